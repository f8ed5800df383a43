// Cluster names on macOS: a file per domain under /etc/resolver (the cluster domain and each
// namespace, so `svc.ns` resolves too) sends those names, and only those, to kt's local DNS server
// on 127.0.0.1 at a port of its own (resolver(5) takes a port; 53 stays free for others). Writing
// /etc/resolver needs root. Each file starts with kt's marker; a file there without it is not
// kt's to replace, and the session refuses to start. Removed on exit, and by kt-clean after a crash.
import { readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path/posix';
import type { Cleaner } from '../mode.ts';
import { runSteps, type OsPlan, type OsSteps } from '../os-plan.ts';

export const RESOLVER_DIR = '/etc/resolver';
const MARKER = '# kt-session=';
const DOMAIN = /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/;

/** The session a resolver file belongs to, from its first line; undefined for a file kt did not write. */
export function resolverFileSession(content: string): string | undefined {
  const first = content.split('\n', 1)[0] ?? '';
  return first.startsWith(MARKER) ? first.slice(MARKER.length).split(/\s/, 1)[0] : undefined;
}

export function resolverFileContent(sessionId: string, port: number): string {
  return `${MARKER}${sessionId} (kubectl kt-connect; removed when the session ends, or by kubectl kt-clean)\nnameserver 127.0.0.1\nport ${port}\n`;
}

export interface MacResolverInput {
  sessionId: string;
  clusterDomain: string;
  namespaces: readonly string[];
  port: number;
  /** What is at a path now (undefined: nothing). */
  existing: (path: string) => string | undefined;
  isLive: (sessionId: string) => boolean;
  dir?: string;
}

/** The resolver files for a session and their undo, or the sentence that stops the session. */
export function macResolverPlan(input: MacResolverInput): { plan: OsPlan } | { error: string } {
  const dir = input.dir ?? RESOLVER_DIR;
  const domains = [...new Set([input.clusterDomain.toLowerCase().replace(/\.$/, ''), ...[...input.namespaces].sort()])];
  const bad = domains.find((d) => !DOMAIN.test(d));
  if (bad !== undefined) return { error: `"${bad}" is not a DNS name kt can write a resolver file for.` };
  if (!Number.isInteger(input.port) || input.port < 1 || input.port > 65535) return { error: `the local DNS port ${input.port} is not a port.` };
  const files = domains.map((d) => ({ path: join(dir, d), content: resolverFileContent(input.sessionId, input.port) }));
  for (const f of files) {
    const now = input.existing(f.path);
    if (now === undefined) continue;
    const owner = resolverFileSession(now);
    if (owner === undefined) return { error: `${f.path} exists and kt did not write it; move it away, or the cluster's names would replace its resolver.` };
    if (owner !== input.sessionId && input.isLive(owner)) return { error: `${f.path} belongs to the running kt session ${owner}; end that session first.` };
  }
  return {
    plan: {
      apply: { commands: [{ argv: ['mkdir', '-p', dir], admin: true }], write: files, remove: [] },
      undo: { commands: [], write: [], remove: files.map((f) => f.path) },
    },
  };
}

/** The files of sessions that are gone, among a resolver folder's files. */
export function staleResolverFiles(files: readonly { path: string; content: string }[], isLive: (id: string) => boolean): { path: string; sessionId: string }[] {
  return files.flatMap((f) => {
    const id = resolverFileSession(f.content);
    return id !== undefined && !isLive(id) ? [{ path: f.path, sessionId: id }] : [];
  });
}

export function macResolverCleaner(isLive: (id: string) => boolean, dir = RESOLVER_DIR): Cleaner {
  return async (dryRun) => {
    const names = await readdir(dir).catch(() => [] as string[]);
    const files = await Promise.all(names.map(async (n) => ({ path: join(dir, n), content: await readFile(join(dir, n), 'utf8').catch(() => '') })));
    const stale = staleResolverFiles(files, isLive);
    const undo: OsSteps = { commands: [], write: [], remove: stale.map((s) => s.path) };
    if (!dryRun) await runSteps(undo);
    return stale.map((s) => `${dryRun ? 'would remove' : 'removed'} ${s.path} (session ${s.sessionId})`);
  };
}
