// `kubectl kt-connect status`: the kt-connect sessions running on this machine and their health,
// from the records each session keeps up to date (see local-state.ts).
import { str, type Parsed } from '../cli/cli.ts';
import { listLocalSessions, processAlive, type LocalSession } from '../session/local-state.ts';
import type { TunnelHealth } from '../tunnel/tunnel.ts';

export interface ConnectStatus {
  session: string;
  pid: number;
  namespace: string;
  context: string;
  mode: string;
  state: 'healthy' | 'reconnecting' | 'starting' | 'dead';
  uptimeSeconds: number;
  reconnects: number;
  openConnections: number;
  totalConnections: number;
  lastError?: string | undefined;
}

export function summarize(s: LocalSession, now = Date.now()): ConnectStatus {
  const t = s.details.tunnel as TunnelHealth | undefined;
  let state: ConnectStatus['state'];
  if (!processAlive(s.pid)) state = 'dead';
  else if (!t || t.state === 'connecting') state = 'starting';
  else state = t.state === 'up' ? 'healthy' : 'reconnecting';
  return {
    session: s.id, pid: s.pid, namespace: s.namespace, context: s.context, mode: s.mode ?? 'starting', state,
    uptimeSeconds: Math.round((now - s.startedAt) / 1000), reconnects: t?.reconnects ?? 0,
    openConnections: t?.openChannels ?? 0, totalConnections: t?.totalChannels ?? 0, lastError: t?.lastError,
  };
}

export async function runConnectStatus(p: Parsed): Promise<number> {
  const rows = listLocalSessions().filter((s) => s.kind === 'connect').map((s) => summarize(s));
  if (str(p, 'output') === 'json') {
    process.stdout.write(`${JSON.stringify({ sessions: rows }, null, 2)}\n`);
  } else if (rows.length === 0) {
    process.stdout.write('no kt-connect session is running on this machine.\n');
  } else {
    for (const r of rows) {
      process.stdout.write(
        `session ${r.session}: ${r.state}, mode ${r.mode}, namespace ${r.namespace} (context ${r.context}), up ${r.uptimeSeconds}s, ` +
        `${r.openConnections} open / ${r.totalConnections} total connections, ${r.reconnects} reconnects` +
        `${r.state !== 'healthy' && r.lastError ? `, last error: ${r.lastError}` : ''}${r.state === 'dead' ? ' (process gone: run kubectl kt-clean)' : ''}\n`,
      );
    }
  }
  return rows.some((r) => r.state === 'healthy') ? 0 : 1;
}
