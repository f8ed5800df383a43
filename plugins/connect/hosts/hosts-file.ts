// kt's sections in a hosts file, between "# BEGIN kt <session>" and "# END kt <session>" lines.
// Adding a section and removing it again gives back the file byte for byte: the section takes the
// file's line ending (LF or CRLF), and on a file without a final newline it is appended after a
// line break and itself left without one, so that removing it also removes that line break.
// A crashed session's section stays until the next run or a cleanup removes it
// (removeAllKtSections with a staleness test).
import { randomBytes } from 'node:crypto';
import { chmod, chown, readFile, realpath, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';

export interface HostsEntry {
  ip: string;
  names: string[];
}

/** Session ids go into marker lines: a single word. */
const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;
/** Host names: no whitespace, no comment sign, ASCII only (IDNs go in as punycode). */
const HOST_NAME = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;
const IP = /^[0-9A-Fa-f.:]+(%[A-Za-z0-9_.-]+)?$/;
/** Some resolvers (Windows' historically) take at most this many names per line. */
const NAMES_PER_LINE = 8;

export const BEGIN_PREFIX = '# BEGIN kt ';
export const END_PREFIX = '# END kt ';

function checkSessionId(sessionId: string): void {
  if (!SESSION_ID.test(sessionId)) throw new Error(`invalid kt session id ${JSON.stringify(sessionId)}`);
}

interface Line {
  /** Text without the line ending. */
  text: string;
  start: number;
  /** Index just past the line ending (or the end of the content). */
  end: number;
  /** '\n', '\r\n' or '' for a last line without one. */
  eol: string;
}

function splitLines(content: string): Line[] {
  const lines: Line[] = [];
  let start = 0;
  while (start < content.length) {
    const nl = content.indexOf('\n', start);
    if (nl < 0) {
      lines.push({ text: content.slice(start), start, end: content.length, eol: '' });
      break;
    }
    const crlf = nl > start && content[nl - 1] === '\r';
    lines.push({
      text: content.slice(start, crlf ? nl - 1 : nl),
      start,
      end: nl + 1,
      eol: crlf ? '\r\n' : '\n',
    });
    start = nl + 1;
  }
  return lines;
}

/** The line ending the content uses: that of its first line; LF when it has none. */
export function detectEol(content: string): '\n' | '\r\n' {
  const nl = content.indexOf('\n');
  return nl > 0 && content[nl - 1] === '\r' ? '\r\n' : '\n';
}

function markerSession(text: string, prefix: string): string | undefined {
  const trimmed = text.trimEnd();
  if (!trimmed.startsWith(prefix)) return undefined;
  const id = trimmed.slice(prefix.length);
  return SESSION_ID.test(id) ? id : undefined;
}

interface Section {
  sessionId: string;
  /** Where the removal starts and ends, so that the content around it is as it was. */
  from: number;
  to: number;
}

/** kt's sections in order; a BEGIN without its END is not a section and is left alone. */
function findSections(content: string): Section[] {
  const lines = splitLines(content);
  const sections: Section[] = [];
  for (let i = 0; i < lines.length; i++) {
    const begin = lines[i]!;
    const sessionId = markerSession(begin.text, BEGIN_PREFIX);
    if (sessionId === undefined) continue;
    let j = i + 1;
    while (j < lines.length && markerSession(lines[j]!.text, END_PREFIX) !== sessionId) j++;
    const end = lines[j];
    if (end === undefined) continue;
    let from = begin.start;
    if (end.eol === '' && from > 0) {
      // The section closes a file that had no final newline: take back the line break that was
      // added before it, the same kind as the section's own.
      const added = begin.eol === '' ? detectEol(content) : begin.eol;
      if (content.slice(from - added.length, from) === added) from -= added.length;
    }
    sections.push({ sessionId, from, to: end.end });
    i = j;
  }
  return sections;
}

function removeSections(content: string, remove: (sessionId: string) => boolean): string {
  // One at a time from the back, looking again after each: whether a section ends the file (and
  // so takes back the line break before it) depends on the sections after it being gone.
  let out = content;
  const decided = new Map<string, boolean>();
  const shouldRemove = (id: string): boolean => {
    let answer = decided.get(id);
    if (answer === undefined) decided.set(id, (answer = remove(id)));
    return answer;
  };
  for (;;) {
    const section = findSections(out).findLast((s) => shouldRemove(s.sessionId));
    if (!section) return out;
    out = out.slice(0, section.from) + out.slice(section.to);
  }
}

/** The text of one section with the given line ending, without a line ending after END. */
export function formatSection(sessionId: string, entries: readonly HostsEntry[], eol: string = '\n'): string {
  checkSessionId(sessionId);
  const lines = [`${BEGIN_PREFIX}${sessionId}`];
  for (const entry of entries) {
    if (!IP.test(entry.ip)) throw new Error(`invalid IP address ${JSON.stringify(entry.ip)} for the hosts file`);
    for (const name of entry.names) {
      if (!HOST_NAME.test(name)) throw new Error(`invalid host name ${JSON.stringify(name)} for the hosts file`);
    }
    for (let i = 0; i < entry.names.length; i += NAMES_PER_LINE) {
      lines.push(`${entry.ip}\t${entry.names.slice(i, i + NAMES_PER_LINE).join(' ')}`);
    }
  }
  lines.push(`${END_PREFIX}${sessionId}`);
  return lines.join(eol);
}

/**
 * The content with the session's section replaced by one holding `entries` (appended at the
 * end). With no entries the section is just removed.
 */
export function addSection(content: string, sessionId: string, entries: readonly HostsEntry[]): string {
  checkSessionId(sessionId);
  const base = removeSection(content, sessionId);
  if (entries.length === 0) return base;
  const eol = detectEol(base);
  const section = formatSection(sessionId, entries, eol);
  if (base === '') return `${section}${eol}`;
  if (base.endsWith('\n')) return `${base}${section}${eol}`;
  // No final newline: start a line for the section and leave the file ending as it did.
  return `${base}${eol}${section}`;
}

/** The content without the session's section (unchanged when it has none). */
export function removeSection(content: string, sessionId: string): string {
  checkSessionId(sessionId);
  return removeSections(content, (id) => id === sessionId);
}

/** The content without kt's sections: all of them, or those `isStale` says belong to dead sessions. */
export function removeAllKtSections(content: string, isStale: (sessionId: string) => boolean = () => true): string {
  return removeSections(content, isStale);
}

/** The session ids that have a section, in file order. */
export function listKtSessions(content: string): string[] {
  return findSections(content).map((section) => section.sessionId);
}

/** The entries in the session's section (the first one, if several). */
export function readSection(content: string, sessionId: string): HostsEntry[] | undefined {
  const section = findSections(content).find((s) => s.sessionId === sessionId);
  if (!section) return undefined;
  const entries: HostsEntry[] = [];
  for (const line of splitLines(content.slice(section.from, section.to))) {
    const text = line.text.trim();
    if (text === '' || text.startsWith('#')) continue;
    const [ip, ...names] = text.split(/\s+/);
    if (ip !== undefined) entries.push({ ip, names });
  }
  return entries;
}

// ---- IO ------------------------------------------------------------------------------------------

// Read and written as latin1: every byte maps to one character and back, so bytes kt does not
// touch (comments in any encoding, a BOM) come back unchanged.
const ENCODING = 'latin1';

/** Rename errors after which the file is written in place instead (bind mounts, odd filesystems). */
const IN_PLACE_CODES = new Set(['EBUSY', 'EXDEV', 'EPERM', 'EACCES', 'EROFS', 'ENOTSUP', 'EINVAL']);

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  return undefined;
}

export interface WriteFileOptions {
  /** For tests: the rename step. */
  rename?: (from: string, to: string) => Promise<void>;
}

/**
 * Replaces the file's content: a temporary file in the same directory (same mode, and owner when
 * permitted) renamed over it, so that readers see the old or the new content. When that is not
 * possible (a bind-mounted file cannot be renamed over: EBUSY/EXDEV; a directory kt cannot write)
 * the file is written in place. A symbolic link is followed, not replaced.
 */
export async function writeFileAtomic(path: string, data: string, options: WriteFileOptions = {}): Promise<void> {
  const target = await realpath(path);
  const info = await stat(target);
  const temp = join(dirname(target), `.${basename(target)}.kt-${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  let tempWritten = false;
  try {
    await writeFile(temp, data, { encoding: ENCODING, mode: 0o600, flag: 'wx' });
    tempWritten = true;
    await chmod(temp, info.mode & 0o7777);
    if (typeof process.getuid === 'function' && (info.uid !== process.getuid() || info.gid !== process.getgid?.())) {
      await chown(temp, info.uid, info.gid).catch(() => undefined);
    }
    await (options.rename ?? rename)(temp, target);
    return;
  } catch (err) {
    if (tempWritten) await unlink(temp).catch(() => undefined);
    const code = errorCode(err);
    if (code === undefined || !IN_PLACE_CODES.has(code)) throw err;
  }
  await writeFile(target, data, { encoding: ENCODING });
}

export async function readHostsFile(path: string): Promise<string> {
  return readFile(path, { encoding: ENCODING });
}

/** Per-path queue so that one process never interleaves two read-modify-write cycles. */
const queues = new Map<string, Promise<unknown>>();

function serialized<T>(path: string, task: () => Promise<T>): Promise<T> {
  const previous = queues.get(path) ?? Promise.resolve();
  const next = previous.then(task, task);
  const settled = next.catch(() => undefined);
  queues.set(path, settled);
  void settled.then(() => {
    if (queues.get(path) === settled) queues.delete(path);
  });
  return next;
}

/**
 * Applies `change` to the file's content and writes it back when it differs. Another program
 * writing between the read and the write is caught by reading again just before writing (and
 * starting over); the window left is small. Resolves whether the file changed.
 */
export function updateHostsFile(
  path: string,
  change: (content: string) => string,
  options: WriteFileOptions = {},
): Promise<boolean> {
  return serialized(path, async () => {
    for (let attempt = 0; ; attempt++) {
      const before = await readHostsFile(path);
      const after = change(before);
      if (after === before) return false;
      if (attempt < 3 && (await readHostsFile(path)) !== before) continue;
      await writeFileAtomic(path, after, options);
      return true;
    }
  });
}

/** Writes (or replaces) the session's section. */
export function writeHostsSection(
  path: string,
  sessionId: string,
  entries: readonly HostsEntry[],
  options: WriteFileOptions = {},
): Promise<boolean> {
  checkSessionId(sessionId);
  return updateHostsFile(path, (content) => addSection(content, sessionId, entries), options);
}

/** Removes the session's section, giving back the file as it was before the session. */
export function restoreHosts(path: string, sessionId: string, options: WriteFileOptions = {}): Promise<boolean> {
  checkSessionId(sessionId);
  return updateHostsFile(path, (content) => removeSection(content, sessionId), options);
}

/** Removes the sections of sessions `isStale` says are gone (all of kt's by default). */
export function removeStaleHostsSections(
  path: string,
  isStale: (sessionId: string) => boolean = () => true,
  options: WriteFileOptions = {},
): Promise<boolean> {
  return updateHostsFile(path, (content) => removeAllKtSections(content, isStale), options);
}
