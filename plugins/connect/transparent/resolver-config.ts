// Wires the local DNS server into the system resolver, and unwires it. On Linux the resolv.conf
// (default /etc/resolv.conf) becomes
//
//   nameserver <local DNS address>
//   # kt <sessionId> original follows
//   <the original bytes, unchanged>
//
// so the local DNS server is asked first while the original search list and options still apply
// (and the original nameservers answer, after a timeout, if the local server is gone). The
// original bytes are also kept in a sidecar file `<path>.kt-<sessionId>.orig` next to it (or in
// a state directory when that directory is not writable); restoring writes the sidecar's bytes
// back exactly, or, without a sidecar, everything after the marker line. A crashed session's
// change is found by its marker and undone by restoreStale.
//
// A resolv.conf that is a symlink (systemd-resolved, resolvconf) is refused unless the caller
// allows replacing the link; the link is then put back on restore. A bind-mounted resolv.conf
// (containers, `ip netns exec`) cannot be renamed over (EBUSY) and is written in place.
import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import type { Stats } from 'node:fs';
import { access, chown, lstat, mkdir, open, readFile, readdir, readlink, rename, stat, symlink, unlink, writeFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { basename, dirname, join, resolve } from 'node:path';
import { listedNameservers, type Nameserver } from '../../../runtime/resolv-conf.ts';

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

export type { Nameserver };

/** The resolver cannot be wired or unwired. */
export class ResolverConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ResolverConfigError';
  }
}

export interface WireOptions {
  sessionId: string;
  /** The local DNS server's address (resolv.conf has no port: it must listen on 53). */
  nameserver: string;
  /** Default /etc/resolv.conf. */
  path?: string;
  /** Where the original copy goes when the resolv.conf's directory is not writable. */
  stateDir?: string;
  /** Keep the original copy in stateDir even when the directory is writable. */
  preferStateDir?: boolean;
  /** Replace a symlinked resolv.conf with a file (the link comes back on restore). */
  replaceSymlink?: boolean;
  /** Default process.platform. */
  platform?: NodeJS.Platform;
}

export interface WiredResolver {
  readonly path: string;
  /** The bytes that were replaced (for a symlink: its target's). */
  readonly original: Buffer;
  /** The nameservers of the original, for forwarding everything that is not a cluster name. */
  readonly upstreams: Nameserver[];
  /** Where the original copy is kept; undefined when only the in-file copy exists. */
  readonly backupPath: string | undefined;
  /** Things the caller should tell the user (e.g. `options rotate`). */
  readonly warnings: string[];
  /** Puts the original back (see restore); idempotent. */
  restore(): Promise<boolean>;
}

export interface RestoreOptions {
  /** Restore only this session's change; default: whichever kt session's change is on top. */
  sessionId?: string;
  /** The state directory given when wiring, if any. */
  stateDir?: string;
}

const SESSION_ID = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

function checkSessionId(sessionId: string): void {
  if (!SESSION_ID.test(sessionId) || sessionId.length > 200) {
    throw new ResolverConfigError(`session id ${JSON.stringify(sessionId)} cannot be written into resolv.conf`);
  }
}

// ---------------------------------------------------------------------------------------------
// Pure parts.

export function markerLine(sessionId: string): string {
  return `# kt ${sessionId} original follows`;
}

/** The content kt writes: its nameserver line, the marker, then the original bytes. */
export function wiredContent(original: Buffer, nameserver: string, sessionId: string): Buffer {
  checkSessionId(sessionId);
  if (!isIP(nameserver)) throw new ResolverConfigError(`${JSON.stringify(nameserver)} is not an IP address`);
  return Buffer.concat([Buffer.from(`nameserver ${nameserver}\n${markerLine(sessionId)}\n`, 'latin1'), original]);
}

export interface Wired {
  sessionId: string;
  nameserver: string;
  /** The bytes after the marker line. */
  original: Buffer;
}

const HEADER = /^nameserver (\S+)\n# kt ([A-Za-z0-9][A-Za-z0-9_.-]*) original follows\n/;

/** kt's change on top of `content`, or undefined when the content does not start with one. */
export function parseWired(content: Buffer): Wired | undefined {
  // The header is ASCII; latin1 maps bytes to characters one to one, so lengths are byte offsets.
  const head = content.subarray(0, 512).toString('latin1');
  const match = HEADER.exec(head);
  if (!match) return undefined;
  return { nameserver: match[1]!, sessionId: match[2]!, original: content.subarray(match[0].length) };
}

/** The sessions whose changes are stacked in `content`, top first. */
export function wiredSessions(content: Buffer): string[] {
  const sessions: string[] = [];
  for (let layer = parseWired(content); layer !== undefined; layer = parseWired(layer.original)) sessions.push(layer.sessionId);
  return sessions;
}

/**
 * The nameservers of a resolv.conf, in order. Like the shadow's parser, a nameserver may carry a
 * port (127.0.0.1:5300, [::1]:5300), which the C library does not understand but tests use.
 */
export function upstreamsFromResolvConf(text: string): Nameserver[] {
  return listedNameservers(text);
}

/** The copy of the original next to the file. */
export function sidecarPath(path: string, sessionId: string): string {
  return `${path}.kt-${sessionId}.orig`;
}

/** The copy of the original in a state directory (named after the whole path). */
export function stateDirPath(stateDir: string, path: string, sessionId: string): string {
  return join(stateDir, `${encodeURIComponent(resolve(path))}.kt-${sessionId}.orig`);
}

/** Where a symlink's target is remembered, next to the copy of its content. */
function linkRecordPath(copyPath: string): string {
  return copyPath.replace(/\.orig$/, '.link');
}

// ---------------------------------------------------------------------------------------------
// Files.

function code(err: unknown): unknown {
  return (err as { code?: unknown }).code;
}

async function exists(path: string): Promise<boolean> {
  try {
    await lstat(path);
    return true;
  } catch {
    return false;
  }
}

/**
 * Replaces the content of `path` (a regular file or, with `replaceLink`, a symlink) by `data`:
 * a temporary file renamed over it, keeping mode and owner; when the rename is impossible
 * (bind mount: EBUSY; directory not writable) the file is written in place.
 */
export async function replaceContent(path: string, data: Buffer, options: { replaceLink?: boolean } = {}): Promise<'renamed' | 'in-place'> {
  const link = await lstat(path);
  const info: Stats = link.isSymbolicLink() ? await stat(path) : link;
  const tmp = join(dirname(path), `.${basename(path)}.kt-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  try {
    await writeFile(tmp, data, { mode: info.mode & 0o7777, flag: 'wx' });
    try {
      await chown(tmp, info.uid, info.gid);
    } catch {
      // not root: the file stays ours
    }
    const handle = await open(tmp, 'r');
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(tmp, path);
    return 'renamed';
  } catch (err) {
    await unlink(tmp).catch(() => {});
    if (link.isSymbolicLink() && options.replaceLink) throw err;
    const c = code(err);
    if (c !== 'EBUSY' && c !== 'EXDEV' && c !== 'EACCES' && c !== 'EPERM' && c !== 'EROFS') throw err;
  }
  if (link.isSymbolicLink()) throw new ResolverConfigError(`${path} is a symlink and cannot be replaced`);
  const handle = await open(path, 'r+');
  try {
    await handle.write(data, 0, data.length, 0);
    await handle.truncate(data.length);
    await handle.sync();
  } finally {
    await handle.close();
  }
  return 'in-place';
}

async function putBackLink(path: string, target: string): Promise<void> {
  const tmp = join(dirname(path), `.${basename(path)}.kt-tmp-${process.pid}-${randomBytes(4).toString('hex')}`);
  await symlink(target, tmp);
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

async function writable(dir: string): Promise<boolean> {
  try {
    await access(dir, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The places a session's copy may be, in the order they are tried. */
function copyCandidates(path: string, sessionId: string, stateDir: string | undefined): string[] {
  const candidates = [sidecarPath(path, sessionId)];
  if (stateDir !== undefined) candidates.push(stateDirPath(stateDir, path, sessionId));
  return candidates;
}

async function removeCopies(path: string, sessionId: string, stateDir: string | undefined): Promise<void> {
  for (const copy of copyCandidates(path, sessionId, stateDir)) {
    await unlink(copy).catch(() => {});
    await unlink(linkRecordPath(copy)).catch(() => {});
  }
}

// ---------------------------------------------------------------------------------------------
// Wiring.

function unsupported(platform: NodeJS.Platform): ResolverConfigError {
  if (platform === 'darwin') {
    return new ResolverConfigError(
      'kt cannot wire cluster DNS into the macOS resolver (/etc/resolver/<domain>) yet; use --mode socks or --mode hosts',
    );
  }
  return new ResolverConfigError(`kt cannot wire cluster DNS into the resolver on ${platform} yet; use --mode socks or --mode hosts`);
}

export async function wireResolver(options: WireOptions): Promise<WiredResolver> {
  const platform = options.platform ?? process.platform;
  if (platform !== 'linux') throw unsupported(platform);
  const path = options.path ?? DEFAULT_RESOLV_CONF;
  const { sessionId, stateDir } = options;
  checkSessionId(sessionId);

  let link: Stats;
  try {
    link = await lstat(path);
  } catch (err) {
    if (code(err) === 'ENOENT') throw new ResolverConfigError(`${path} does not exist, so there is no resolver to wire the cluster DNS into`);
    throw err;
  }
  let linkTarget: string | undefined;
  if (link.isSymbolicLink()) {
    linkTarget = await readlink(path);
    if (!options.replaceSymlink) {
      throw new ResolverConfigError(
        `${path} is a symlink to ${linkTarget} (managed by systemd-resolved or resolvconf), which kt does not rewrite; use --mode socks or --mode hosts, or allow kt to replace the link`,
      );
    }
  } else if (!link.isFile()) {
    throw new ResolverConfigError(`${path} is not a regular file`);
  }

  const original = await readFile(path);
  const wired = parseWired(original);
  if (wired?.sessionId === sessionId) {
    throw new ResolverConfigError(`${path} already carries the DNS of session ${sessionId}`);
  }

  // The copy first: once resolv.conf changes, the original must be recoverable.
  let backupPath: string | undefined;
  const targets: string[] = [];
  if (!options.preferStateDir && (await writable(dirname(path)))) targets.push(sidecarPath(path, sessionId));
  if (stateDir !== undefined) targets.push(stateDirPath(stateDir, path, sessionId));
  for (const target of targets) {
    try {
      if (target !== sidecarPath(path, sessionId)) await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await writeFile(target, original, { mode: 0o600 });
      if (linkTarget !== undefined) await writeFile(linkRecordPath(target), linkTarget, { mode: 0o600 });
      backupPath = target;
      break;
    } catch {
      await unlink(target).catch(() => {});
    }
  }

  try {
    await replaceContent(path, wiredContent(original, options.nameserver, sessionId), { replaceLink: linkTarget !== undefined });
  } catch (err) {
    if (backupPath !== undefined) await removeCopies(path, sessionId, stateDir);
    throw new ResolverConfigError(`cannot rewrite ${path}: ${(err as Error).message}`, { cause: err });
  }

  // Under another session's change, the nameservers that matter are the ones below all kt layers.
  let innermost: Buffer = original;
  for (let layer = parseWired(innermost); layer !== undefined; layer = parseWired(innermost)) innermost = layer.original;
  const warnings: string[] = [];
  const text = innermost.toString('utf8');
  if (/^\s*options\s.*\brotate\b/m.test(text)) {
    warnings.push(`${path} has "options rotate", so some queries for cluster names go to the original nameservers and fail`);
  }
  if (backupPath === undefined) warnings.push(`no copy of the original ${path} could be written; it is kept inside the file only`);

  return {
    path,
    original,
    upstreams: upstreamsFromResolvConf(text).filter((s) => !(s.address === options.nameserver && s.port === 53)),
    backupPath,
    warnings,
    restore: () => restore(path, { sessionId, stateDir }),
  };
}

/**
 * Undoes a kt change of `path`: the one on top, or only `options.sessionId`'s when it is on top.
 * The original bytes come from the session's copy, else from after the marker line; a replaced
 * symlink is put back. Resolves false when there was nothing of that session to undo (the file
 * was rewritten by someone else meanwhile, or already restored); a copy no longer needed is
 * removed.
 */
export async function restore(path: string = DEFAULT_RESOLV_CONF, options: RestoreOptions = {}): Promise<boolean> {
  const { stateDir } = options;
  let current: Buffer;
  try {
    current = await readFile(path);
  } catch (err) {
    if (code(err) === 'ENOENT') return false;
    throw err;
  }
  const top = parseWired(current);
  if (top === undefined || (options.sessionId !== undefined && top.sessionId !== options.sessionId)) {
    // Not on top. Under another session's change, this session's copy is still needed.
    if (options.sessionId !== undefined && !wiredSessions(current).includes(options.sessionId)) {
      await removeCopies(path, options.sessionId, stateDir);
    }
    return false;
  }
  const sessionId = top.sessionId;
  let original = top.original;
  let linkTarget: string | undefined;
  for (const copy of copyCandidates(path, sessionId, stateDir)) {
    if (!(await exists(copy))) continue;
    original = await readFile(copy);
    linkTarget = await readFile(linkRecordPath(copy), 'utf8').catch(() => undefined);
    break;
  }
  if (linkTarget !== undefined) {
    // The link's target was never touched: putting the link back restores what was there.
    await putBackLink(path, linkTarget);
  } else {
    await replaceContent(path, original);
  }
  await removeCopies(path, sessionId, stateDir);
  return true;
}

/**
 * Undoes the changes of sessions that are not live, top down, stopping at a live one; removes
 * copies left by dead sessions whose change is no longer in the file. Resolves with the sessions
 * whose change was undone.
 */
export async function restoreStale(
  path: string,
  isLive: (sessionId: string) => boolean,
  options: { stateDir?: string } = {},
): Promise<string[]> {
  const undone: string[] = [];
  for (;;) {
    let current: Buffer;
    try {
      current = await readFile(path);
    } catch (err) {
      if (code(err) === 'ENOENT') break;
      throw err;
    }
    const top = parseWired(current);
    if (top === undefined || isLive(top.sessionId)) break;
    if (!(await restore(path, { sessionId: top.sessionId, stateDir: options.stateDir }))) break;
    undone.push(top.sessionId);
  }

  // Copies of dead sessions that no longer appear in the file.
  let inFile: string[] = [];
  try {
    inFile = wiredSessions(await readFile(path));
  } catch {
    // no file: every copy is orphaned
  }
  const dirs: [dir: string, prefix: string][] = [[dirname(path), `${basename(path)}.kt-`]];
  if (options.stateDir !== undefined) dirs.push([options.stateDir, `${encodeURIComponent(resolve(path))}.kt-`]);
  for (const [dir, prefix] of dirs) {
    let names: string[];
    try {
      names = await readdir(dir);
    } catch {
      continue;
    }
    for (const name of names) {
      if (!name.startsWith(prefix)) continue;
      const match = /^([A-Za-z0-9][A-Za-z0-9_.-]*)\.(orig|link)$/.exec(name.slice(prefix.length));
      if (!match) continue;
      const sessionId = match[1]!;
      if (inFile.includes(sessionId) || isLive(sessionId)) continue;
      await unlink(join(dir, name)).catch(() => {});
    }
  }
  return undone;
}
