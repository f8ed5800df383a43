// The output schema scripts read: `kt-status`, `kt-connect status` and `kt-dashboard -o json` all
// print documents of apiVersion kt.dev/v1, shaped like Kubernetes objects (metadata, spec, status),
// with times in RFC 3339 and durations in seconds. What a session would undo (its recovery plan)
// is kt's own business and never printed. Fields are only ever added within v1.
import { OUTPUT_FORMATS } from './flags.ts';
import { dump } from 'js-yaml';
import type { ClusterSession } from './sessions.ts';

export const KT_API_VERSION = 'kt.dev/v1';

/** Health of a session: by its heartbeat (cluster clock), its process on this machine, its tunnel. */
export type SessionState = 'healthy' | 'stale' | 'orphaned' | 'starting' | 'reconnecting';

export interface ObjectRef {
  kind: string;
  name: string;
  namespace: string;
}

export interface Session {
  apiVersion: typeof KT_API_VERSION;
  kind: 'Session';
  metadata: { name: string; namespace: string; creationTimestamp: string };
  spec: {
    /** The kt command that started it: connect, exchange, mesh, preview. */
    type: string;
    /** What it works on, e.g. service/echo; '-' for connect. */
    target: string;
    /** Who ran it (user@host). */
    user: string;
    /** connect: socks, transparent or hosts; exchange: selector or scale. */
    mode?: string;
  };
  status: {
    state: SessionState;
    ageSeconds: number;
    /** The last heartbeat, stamped by the API server's clock. */
    lastHeartbeatTime?: string;
    heartbeatAgeSeconds?: number;
    /** The cluster objects that carry the session's label. */
    objects: ObjectRef[];
    /** Set when the session runs on this machine. */
    process?: { pid: number; context: string };
    /** kt-connect's tunnel, as its process last recorded it. */
    tunnel?: { state: string; reconnects: number; openConnections: number; totalConnections: number; lastError?: string };
    /** Why part of the session cannot be undone by this kt (a newer contract, a damaged pod). */
    problems?: string[];
  };
}

export interface SessionList {
  apiVersion: typeof KT_API_VERSION;
  kind: 'SessionList';
  /** clusterTime: the API server's clock when the list was made (absent for local-only lists). */
  metadata: { clusterTime?: string };
  items: Session[];
}

export const rfc3339 = (ms: number): string => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const seconds = (ms: number): number => Math.max(0, Math.round(ms / 1000));

/** A session found in the cluster (see sessions.ts), as the schema says it. */
export function sessionFromCluster(s: ClusterSession): Session {
  return {
    apiVersion: KT_API_VERSION,
    kind: 'Session',
    metadata: { name: s.id, namespace: s.namespace, creationTimestamp: rfc3339(s.createdAt) },
    spec: { type: s.kind, target: s.target, user: s.user, ...(s.mode ? { mode: s.mode } : {}) },
    status: {
      state: s.state, ageSeconds: seconds(s.ageMs),
      ...(s.lastHeartbeat > 0 ? { lastHeartbeatTime: rfc3339(s.lastHeartbeat), heartbeatAgeSeconds: seconds(s.heartbeatAgeMs) } : {}),
      objects: s.objects.map((o) => ({ ...o })),
      ...(s.planErrors.length > 0 ? { problems: [...s.planErrors] } : {}),
    },
  };
}

export function sessionList(items: Session[], clusterTime?: number): SessionList {
  return { apiVersion: KT_API_VERSION, kind: 'SessionList', metadata: clusterTime === undefined ? {} : { clusterTime: rfc3339(clusterTime) }, items };
}

export { OUTPUT_FORMATS };
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];


/** A document as -o json or -o yaml prints it. */
export function printDocument(doc: object, format: 'json' | 'yaml'): string {
  return format === 'json' ? `${JSON.stringify(doc, null, 2)}\n` : dump(doc, { noRefs: true, lineWidth: -1 });
}

function age(sec: number | undefined): string {
  if (sec === undefined) return '-';
  if (sec < 120) return `${sec}s`;
  if (sec < 7200) return `${Math.round(sec / 60)}m`;
  return `${Math.round(sec / 3600)}h`;
}

/** Columns padded like kubectl's tables (three spaces apart, no trailing blanks). */
export function table(header: string[], rows: string[][], noHeaders: boolean): string {
  const all = noHeaders ? rows : [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
  return all.map((r) => `${r.map((c, i) => c.padEnd(widths[i]!)).join('   ').trimEnd()}\n`).join('');
}

/**
 * A session list in any format: json/yaml the document, name `session.kt.dev/<id>`, else a table
 * (wide adds the mode and the objects; allNamespaces a NAMESPACE column).
 */
export function printSessionList(list: SessionList, format: string | undefined, o: { noHeaders: boolean; allNamespaces: boolean }): string {
  if (format === 'json' || format === 'yaml') return printDocument(list, format);
  if (format === 'name') return list.items.map((s) => `session.kt.dev/${s.metadata.name}\n`).join('');
  const wide = format === 'wide';
  const header = [...(o.allNamespaces ? ['NAMESPACE'] : []), 'SESSION', 'KIND', 'TARGET', 'USER', 'AGE', 'HEARTBEAT', 'STATE', ...(wide ? ['MODE', 'OBJECTS'] : [])];
  const rows = list.items.map((s) => [
    ...(o.allNamespaces ? [s.metadata.namespace] : []), s.metadata.name, s.spec.type, s.spec.target, s.spec.user, age(s.status.ageSeconds),
    s.status.heartbeatAgeSeconds === undefined ? '-' : `${age(s.status.heartbeatAgeSeconds)} ago`, s.status.state,
    ...(wide ? [s.spec.mode ?? '-', s.status.objects.map((x) => `${x.kind.toLowerCase()}/${x.name}`).join(',') || '-'] : []),
  ]);
  return table(header, rows, o.noHeaders);
}
