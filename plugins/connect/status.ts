// `kubectl kt-connect status`: the kt-connect sessions running on this machine and their health,
// from the records each session keeps up to date (see local-state.ts), as sentences or as a
// SessionList (housekeeping/schema.ts), the document kt-status prints too.
import { hostname, userInfo } from 'node:os';
import type { Options } from '../cli/cli.ts';
import type { CONNECT_STATUS_FLAGS } from '../housekeeping/flags.ts';
import { listLocalSessions, processAlive, type LocalSession } from '../session/local-state.ts';
import type { TunnelHealth } from '../tunnel/tunnel.ts';
import { KT_API_VERSION, printSessionList, rfc3339, sessionList, type Session, type SessionState } from '../housekeeping/schema.ts';

/** A local kt-connect record as a Session: orphaned once its process is gone, else by its tunnel. */
export function connectSession(s: LocalSession, now = Date.now(), alive: (pid: number) => boolean = processAlive): Session {
  const t = s.details.tunnel as TunnelHealth | undefined;
  let state: SessionState;
  if (!alive(s.pid)) state = 'orphaned';
  else if (!t || t.state === 'connecting') state = 'starting';
  else state = t.state === 'up' ? 'healthy' : 'reconnecting';
  return {
    apiVersion: KT_API_VERSION,
    kind: 'Session',
    metadata: { name: s.id, namespace: s.namespace, creationTimestamp: rfc3339(s.startedAt) },
    spec: { type: 'connect', target: '-', user: localUser(), mode: s.mode ?? 'starting' },
    status: {
      state, ageSeconds: Math.max(0, Math.round((now - s.startedAt) / 1000)), objects: [],
      process: { pid: s.pid, context: s.context },
      tunnel: {
        state: t?.state ?? 'connecting', reconnects: t?.reconnects ?? 0, openConnections: t?.openChannels ?? 0, totalConnections: t?.totalChannels ?? 0,
        ...(t?.lastError ? { lastError: t.lastError } : {}),
      },
    },
  };
}

function localUser(): string {
  // As the session's objects name it (session.ts): records are only ever this user's own.
  let user = 'unknown';
  try { user = userInfo().username; } catch { /* no passwd entry */ }
  return `${user}@${hostname()}`;
}

export async function runConnectStatus(o: Options<typeof CONNECT_STATUS_FLAGS>): Promise<number> {
  const items = listLocalSessions().filter((s) => s.kind === 'connect').map((s) => connectSession(s));
  const out = o.output;
  if (out !== undefined) {
    process.stdout.write(printSessionList(sessionList(items), out, { noHeaders: o.noHeaders, allNamespaces: true }));
  } else if (items.length === 0) {
    process.stdout.write('no kt-connect session is running on this machine.\n');
  } else {
    for (const r of items) {
      const t = r.status.tunnel!;
      process.stdout.write(
        `session ${r.metadata.name}: ${r.status.state}, mode ${r.spec.mode}, namespace ${r.metadata.namespace} (context ${r.status.process!.context}), up ${r.status.ageSeconds}s, ` +
        `${t.openConnections} open / ${t.totalConnections} total connections, ${t.reconnects} reconnects` +
        `${r.status.state !== 'healthy' && t.lastError ? `, last error: ${t.lastError}` : ''}${r.status.state === 'orphaned' ? ' (process gone: run kubectl kt-clean)' : ''}\n`,
      );
    }
  }
  return items.some((r) => r.status.state === 'healthy') ? 0 : 1;
}
