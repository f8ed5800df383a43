// A container's environment exactly as the kubelet builds it for a running pod (kubelet_pods.go
// makeEnvironmentVariables, envvars.FromServices, third_party/forked/golang/expansion): envFrom
// first (later sources override earlier ones), then env in order (value with `$(VAR)` expanded
// against what is defined so far and the service variables, or valueFrom), then the service link
// variables that no declared variable shadows. Pure: objects in, env out.
import type { V1ConfigMap, V1Container, V1EnvVarSource, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import { resourceValue } from './quantity.ts';

export interface EnvInputs {
  pod: V1Pod;
  container: V1Container;
  /** The referenced ConfigMaps and Secrets by name; a missing one is absent. */
  configMaps: ReadonlyMap<string, V1ConfigMap>;
  secrets: ReadonlyMap<string, V1Secret>;
  /** Services of the pod's namespace (used when enableServiceLinks is on) and `kubernetes` of `default`. */
  services: readonly V1Service[];
  masterService?: V1Service | undefined;
  /** The node's allocatable resources: the kubelet's value for an unset limit. */
  nodeAllocatable?: Record<string, string> | undefined;
}

export interface EnvResult {
  env: Record<string, string>;
  /** Why a variable could not be given its value (a missing required key), one sentence each. */
  problems: string[];
}

const OPERATOR = '$';

/** `$(VAR)` expansion as the kubelet does it: `$$` is a literal `$`, unknown references stay as written. */
export function expand(input: string, mapping: (name: string) => string | undefined): string {
  let out = '';
  let checkpoint = 0;
  for (let cursor = 0; cursor < input.length; cursor++) {
    if (input[cursor] !== OPERATOR || cursor + 1 >= input.length) continue;
    out += input.slice(checkpoint, cursor);
    const rest = input.slice(cursor + 1);
    let read: string;
    let advance = 1;
    if (rest[0] === OPERATOR) {
      read = OPERATOR;
    } else if (rest[0] === '(') {
      const close = rest.indexOf(')', 1);
      if (close >= 1) {
        const name = rest.slice(1, close);
        read = mapping(name) ?? `$(${name})`;
        advance = close + 1;
      } else {
        read = '$(';
      }
    } else {
      read = OPERATOR + rest[0]!;
    }
    out += read;
    cursor += advance;
    checkpoint = cursor + 1;
  }
  return out + input.slice(checkpoint);
}

const envName = (s: string): string => s.replaceAll('-', '_').toUpperCase();
const hasIp = (s: V1Service): boolean => !!s.spec?.clusterIP && s.spec.clusterIP !== 'None';

/** The Docker-link style variables the kubelet gives every container for each Service. */
export function serviceLinkEnv(services: readonly V1Service[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const svc of services) {
    if (!hasIp(svc) || !svc.spec?.ports?.length) continue;
    const ip = svc.spec.clusterIP!;
    const prefix = envName(svc.metadata!.name!);
    out[`${prefix}_SERVICE_HOST`] = ip;
    out[`${prefix}_SERVICE_PORT`] = String(svc.spec.ports[0]!.port);
    for (const sp of svc.spec.ports) if (sp.name) out[`${prefix}_SERVICE_PORT_${envName(sp.name)}`] = String(sp.port);
    const hostPort = (port: number): string => (ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`);
    svc.spec.ports.forEach((sp, i) => {
      const proto = (sp.protocol ?? 'TCP');
      const url = `${proto.toLowerCase()}://${hostPort(sp.port)}`;
      if (i === 0) out[`${prefix}_PORT`] = url;
      const pp = `${prefix}_PORT_${sp.port}_${proto.toUpperCase()}`;
      out[pp] = url;
      out[`${pp}_PROTO`] = proto.toLowerCase();
      out[`${pp}_PORT`] = String(sp.port);
      out[`${pp}_ADDR`] = ip;
    });
  }
  return out;
}

/** The service variables the kubelet maps: `kubernetes` of `default` always, the namespace's Services when links are on (they win). */
export function serviceEnv(pod: V1Pod, services: readonly V1Service[], master: V1Service | undefined): Record<string, string> {
  const byName = new Map<string, V1Service>();
  if (master && hasIp(master)) byName.set(master.metadata!.name!, master);
  if (pod.spec?.enableServiceLinks !== false) for (const s of services) if (hasIp(s)) byName.set(s.metadata!.name!, s);
  return serviceLinkEnv([...byName.values()]);
}

const decode = (b64: string): string => Buffer.from(b64, 'base64').toString('utf8');

/** Go's %q for the downward API's label and annotation maps (close enough: JSON escapes control characters the same way for ASCII). */
const goQuote = (s: string): string => JSON.stringify(s);

/** `metadata.labels` or `metadata.annotations` as the downward API formats a whole map: `k="v"` lines, sorted. */
export function formatMap(m: Record<string, string> | undefined): string {
  return Object.keys(m ?? {}).sort().map((k) => `${k}=${goQuote(m![k]!)}`).join('\n');
}

/** A fieldRef's value for a pod, as the kubelet resolves it; undefined for a path it does not know. */
export function fieldValue(pod: V1Pod, path: string): string | undefined {
  const sub = /^metadata\.(labels|annotations)\['(.*)'\]$/.exec(path);
  if (sub) return (sub[1] === 'labels' ? pod.metadata?.labels : pod.metadata?.annotations)?.[sub[2]!] ?? '';
  switch (path) {
    case 'metadata.name': return pod.metadata?.name ?? '';
    case 'metadata.namespace': return pod.metadata?.namespace ?? '';
    case 'metadata.uid': return pod.metadata?.uid ?? '';
    case 'metadata.labels': return formatMap(pod.metadata?.labels);
    case 'metadata.annotations': return formatMap(pod.metadata?.annotations);
    case 'spec.nodeName': return pod.spec?.nodeName ?? '';
    case 'spec.serviceAccountName': return pod.spec?.serviceAccountName ?? '';
    case 'status.hostIP': return pod.status?.hostIP ?? pod.status?.hostIPs?.[0]?.ip ?? '';
    case 'status.hostIPs': return (pod.status?.hostIPs?.map((x) => x.ip) ?? (pod.status?.hostIP ? [pod.status.hostIP] : [])).join(',');
    case 'status.podIP': return pod.status?.podIP ?? '';
    case 'status.podIPs': return (pod.status?.podIPs?.map((x) => x.ip) ?? (pod.status?.podIP ? [pod.status.podIP] : [])).join(',');
    default: return undefined;
  }
}

export function buildEnv(i: EnvInputs): EnvResult {
  const { pod, container } = i;
  const ns = pod.metadata?.namespace ?? '';
  const problems: string[] = [];
  const tmp = new Map<string, string>();
  for (const from of container.envFrom ?? []) {
    const prefix = from.prefix ?? '';
    if (from.configMapRef) {
      const cm = i.configMaps.get(from.configMapRef.name ?? '');
      if (!cm) { if (!from.configMapRef.optional) problems.push(`configmap/${from.configMapRef.name} (envFrom) does not exist in namespace "${ns}"`); continue; }
      for (const [k, v] of Object.entries(cm.data ?? {})) tmp.set(prefix + k, v);
    } else if (from.secretRef) {
      const s = i.secrets.get(from.secretRef.name ?? '');
      if (!s) { if (!from.secretRef.optional) problems.push(`secret/${from.secretRef.name} (envFrom) does not exist in namespace "${ns}"`); continue; }
      for (const [k, v] of Object.entries(s.data ?? {})) tmp.set(prefix + k, decode(v));
    }
  }
  const services = serviceEnv(pod, i.services, i.masterService);
  const mapping = (name: string): string | undefined => tmp.get(name) ?? services[name];
  for (const e of container.env ?? []) {
    let value: string | undefined = e.value ?? '';
    if (value !== '') value = expand(value, mapping);
    else if (e.valueFrom) value = fromSource(e.name, e.valueFrom, i, problems);
    if (value === undefined) continue;
    tmp.set(e.name, value);
  }
  const env: Record<string, string> = {};
  for (const [k, v] of tmp) env[k] = v;
  for (const [k, v] of Object.entries(services)) if (!tmp.has(k)) env[k] = v;
  return { env, problems };
}

/** A valueFrom's value; undefined when the variable is left out (an optional key or object that is missing). */
function fromSource(name: string, src: V1EnvVarSource, i: EnvInputs, problems: string[]): string | undefined {
  const ns = i.pod.metadata?.namespace ?? '';
  if (src.fieldRef) {
    const v = fieldValue(i.pod, src.fieldRef.fieldPath);
    if (v === undefined) problems.push(`${name}: field ${src.fieldRef.fieldPath} is not one kt knows`);
    return v ?? '';
  }
  if (src.resourceFieldRef) {
    const v = resourceValue(src.resourceFieldRef, i.pod, i.container, i.nodeAllocatable);
    if (v === undefined) { problems.push(`${name}: ${src.resourceFieldRef.resource} has no limit and the node's allocatable amount could not be read`); return undefined; }
    return v;
  }
  const ref = src.configMapKeyRef ?? src.secretKeyRef;
  if (!ref) return '';
  const isSecret = !src.configMapKeyRef;
  const kind = isSecret ? 'secret' : 'configmap';
  const obj = isSecret ? i.secrets.get(ref.name ?? '') : i.configMaps.get(ref.name ?? '');
  if (!obj) {
    if (!ref.optional) problems.push(`${name}: ${kind}/${ref.name} does not exist in namespace "${ns}"`);
    return undefined;
  }
  const raw = (obj.data as Record<string, string> | undefined)?.[ref.key];
  if (raw === undefined) {
    if (!ref.optional) problems.push(`${name}: ${kind}/${ref.name} has no key "${ref.key}"`);
    return undefined;
  }
  return isSecret ? decode(raw) : raw;
}
