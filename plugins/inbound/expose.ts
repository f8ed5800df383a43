// --expose LOCAL[:REMOTE][,...]: which local port takes which of a Service's ports. REMOTE may be
// a Service port, a target port or a port name, resolved the way Kubernetes resolves them, down
// to the container port the shadow must listen on.
import type { V1Pod, V1Service, V1ServicePort } from '@kubernetes/client-node';
import { UserError } from '../cli/errors.ts';
import type { PortPair } from './forward.ts';

export interface ExposeSpec {
  local: number;
  /** As written: a number or a port name; undefined means "the same as local". */
  remote: string | undefined;
}

const NAME_RE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

function port(text: string, what: string): number {
  const n = Number(text);
  if (!/^\d+$/.test(text) || n < 1 || n > 65535) throw new UserError(`--expose: ${what} "${text}" is not a port number (1-65535).`, 2);
  return n;
}

export function parseExpose(text: string | undefined): ExposeSpec[] {
  if (!text) throw new UserError('--expose is required: which local port takes the traffic, e.g. --expose 8080 or --expose 8080:80.', 2);
  return text.split(',').map((item) => {
    const parts = item.trim().split(':');
    if (parts.length > 2 || parts[0] === '') throw new UserError(`--expose: "${item}" is not LOCAL or LOCAL:REMOTE.`, 2);
    const local = port(parts[0]!, 'local port');
    const remote = parts[1];
    if (remote !== undefined && !/^\d+$/.test(remote) && !NAME_RE.test(remote)) throw new UserError(`--expose: "${remote}" is neither a port number nor a port name.`, 2);
    if (remote !== undefined && /^\d+$/.test(remote)) port(remote, 'remote port');
    return { local, remote };
  });
}

function describePorts(svc: V1Service): string {
  return (svc.spec?.ports ?? []).map((p) => `${p.name ? `${p.name} ` : ''}${p.port}->${p.targetPort ?? p.port}`).join(', ') || 'none';
}

/** The container port a Service port leads to, looking named target ports up in the pods. */
function targetPortOf(sp: V1ServicePort, pods: V1Pod[], svcName: string): number {
  const tp = sp.targetPort ?? sp.port;
  if (typeof tp === 'number') return tp;
  if (/^\d+$/.test(tp)) return Number(tp);
  for (const pod of pods) {
    for (const c of pod.spec?.containers ?? []) {
      const hit = c.ports?.find((cp) => cp.name === tp);
      if (hit) return hit.containerPort;
    }
  }
  throw new UserError(`service/${svcName} port ${sp.port} targets the named port "${tp}", which no pod it selects declares; give a number instead.`);
}

export interface ResolvedPort extends PortPair {
  servicePort: number;
  name?: string | undefined;
  /** The target port's name when the Service refers to it by name: the shadow must declare it. */
  targetName?: string | undefined;
}

/** Resolves each --expose entry against the Service; pods are those it selects (for named ports). */
export function resolveExpose(specs: ExposeSpec[], svc: V1Service, pods: V1Pod[]): ResolvedPort[] {
  const name = svc.metadata!.name!;
  const ports = svc.spec?.ports ?? [];
  const out: ResolvedPort[] = [];
  for (const s of specs) {
    const want = s.remote ?? String(s.local);
    const isNum = /^\d+$/.test(want);
    const sp =
      ports.find((p) => (isNum ? p.port === Number(want) : p.name === want)) ??
      ports.find((p) => (isNum ? String(p.targetPort ?? p.port) === want : p.targetPort === want));
    if (!sp) throw new UserError(`service/${name} has no port "${want}" (its ports: ${describePorts(svc)}).`, 2);
    if ((sp.protocol ?? 'TCP') !== 'TCP') throw new UserError(`service/${name} port ${sp.port} is ${sp.protocol}; only TCP can be exposed.`, 2);
    const tp = sp.targetPort;
    const targetName = typeof tp === 'string' && !/^\d+$/.test(tp) ? tp : undefined;
    out.push({ local: s.local, remote: targetPortOf(sp, pods, name), servicePort: sp.port, name: sp.name, targetName });
  }
  const seen = new Set<number>();
  for (const r of out) {
    if (seen.has(r.remote)) throw new UserError(`--expose names target port ${r.remote} twice.`, 2);
    seen.add(r.remote);
  }
  return out;
}
