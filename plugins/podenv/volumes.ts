// Which files the container sees in its ConfigMap, Secret, projected and downwardAPI volumes, at
// which paths (relative to --mount DIR), with which modes: `items` pick and rename keys,
// `defaultMode`/`mode` set the mode (0644 unless said), `subPath`/`subPathExpr` mount one entry of
// a volume. Volumes kt cannot bring are named with why. Pure: objects in, a plan out.
import { posix } from 'node:path';
import type { V1ConfigMap, V1Container, V1DownwardAPIVolumeFile, V1KeyToPath, V1Pod, V1Secret, V1Volume } from '@kubernetes/client-node';
import { expand, fieldValue } from './env.ts';
import { resourceValue } from './quantity.ts';

export interface PlannedFile {
  /** Relative to DIR, with `/` separators: `etc/app/config.yaml`. */
  path: string;
  content: Buffer;
  mode: number;
}

export interface MountPlan {
  files: PlannedFile[];
  /** Directories that exist even when empty (a mount of an empty volume). */
  dirs: string[];
  /** Volumes (or parts of them) kt does not bring, with why. */
  skipped: { volume: string; why: string }[];
  problems: string[];
}

export interface VolumeInputs {
  pod: V1Pod;
  container: V1Container;
  configMaps: ReadonlyMap<string, V1ConfigMap>;
  secrets: ReadonlyMap<string, V1Secret>;
  /** The container's environment, for subPathExpr. */
  env: Record<string, string>;
  nodeAllocatable?: Record<string, string> | undefined;
}

const DEFAULT_MODE = 0o644;

/** Why a kind of volume stays in the cluster. */
function unsupported(v: V1Volume): string | undefined {
  if (v.configMap || v.secret || v.projected || v.downwardAPI) return undefined;
  if (v.emptyDir) return 'an emptyDir is scratch space that lives and dies with the pod; use a local directory';
  if (v.persistentVolumeClaim) return `persistentVolumeClaim ${v.persistentVolumeClaim.claimName} holds data that stays in the cluster`;
  if (v.hostPath) return `hostPath ${v.hostPath.path} is a directory of the node`;
  if (v.csi) return `a CSI volume (${v.csi.driver}) is provided by its driver on the node`;
  if (v.ephemeral) return 'an ephemeral volume is provisioned for the pod by the cluster';
  const kind = Object.keys(v).find((k) => k !== 'name') ?? 'unknown';
  return `a ${kind} volume is provided on the node`;
}

type Entries = Map<string, { content: Buffer; mode: number }>;

function keyed(data: Record<string, Buffer>, items: V1KeyToPath[] | undefined, mode: number, what: string, optional: boolean, problems: string[]): Entries {
  const out: Entries = new Map();
  if (!items) {
    for (const [k, v] of Object.entries(data)) out.set(k, { content: v, mode });
    return out;
  }
  for (const it of items) {
    const v = data[it.key];
    if (v === undefined) { if (!optional) problems.push(`${what} has no key "${it.key}"`); continue; }
    out.set(it.path, { content: v, mode: it.mode ?? mode });
  }
  return out;
}

const cmData = (cm: V1ConfigMap): Record<string, Buffer> => ({
  ...Object.fromEntries(Object.entries(cm.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'utf8')])),
  ...Object.fromEntries(Object.entries(cm.binaryData ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')])),
});
const secretData = (s: V1Secret): Record<string, Buffer> => Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64')]));

function downward(items: V1DownwardAPIVolumeFile[] | undefined, mode: number, i: VolumeInputs, problems: string[]): Entries {
  const out: Entries = new Map();
  for (const it of items ?? []) {
    let value: string | undefined;
    if (it.fieldRef) value = fieldValue(i.pod, it.fieldRef.fieldPath);
    else if (it.resourceFieldRef) value = resourceValue(it.resourceFieldRef, i.pod, i.container, i.nodeAllocatable);
    if (value === undefined) { problems.push(`downwardAPI file ${it.path} cannot be computed here`); continue; }
    out.set(it.path, { content: Buffer.from(value, 'utf8'), mode: it.mode ?? mode });
  }
  return out;
}

/** The entries of one volume, relative to its root; undefined for a kind kt does not bring. */
function volumeEntries(v: V1Volume, i: VolumeInputs, problems: string[], skipped: MountPlan['skipped']): Entries | undefined {
  const ns = i.pod.metadata?.namespace ?? '';
  if (v.configMap) {
    const name = v.configMap.name!;
    const cm = i.configMaps.get(name);
    const mode = v.configMap.defaultMode ?? DEFAULT_MODE;
    if (!cm) { if (!v.configMap.optional) problems.push(`configmap/${name} (volume ${v.name}) does not exist in namespace "${ns}"`); return new Map(); }
    return keyed(cmData(cm), v.configMap.items, mode, `configmap/${name}`, !!v.configMap.optional, problems);
  }
  if (v.secret) {
    const name = v.secret.secretName!;
    const s = i.secrets.get(name);
    const mode = v.secret.defaultMode ?? DEFAULT_MODE;
    if (!s) { if (!v.secret.optional) problems.push(`secret/${name} (volume ${v.name}) does not exist in namespace "${ns}"`); return new Map(); }
    return keyed(secretData(s), v.secret.items, mode, `secret/${name}`, !!v.secret.optional, problems);
  }
  if (v.downwardAPI) return downward(v.downwardAPI.items, v.downwardAPI.defaultMode ?? DEFAULT_MODE, i, problems);
  if (v.projected) {
    const mode = v.projected.defaultMode ?? DEFAULT_MODE;
    const out: Entries = new Map();
    for (const src of v.projected.sources ?? []) {
      let part: Entries = new Map();
      if (src.configMap) {
        const cm = i.configMaps.get(src.configMap.name!);
        if (cm) part = keyed(cmData(cm), src.configMap.items, mode, `configmap/${src.configMap.name}`, !!src.configMap.optional, problems);
        else if (!src.configMap.optional) problems.push(`configmap/${src.configMap.name} (volume ${v.name}) does not exist in namespace "${ns}"`);
      } else if (src.secret) {
        const s = i.secrets.get(src.secret.name!);
        if (s) part = keyed(secretData(s), src.secret.items, mode, `secret/${src.secret.name}`, !!src.secret.optional, problems);
        else if (!src.secret.optional) problems.push(`secret/${src.secret.name} (volume ${v.name}) does not exist in namespace "${ns}"`);
      } else if (src.downwardAPI) {
        part = downward(src.downwardAPI.items, mode, i, problems);
      } else if (src.serviceAccountToken) {
        skipped.push({ volume: v.name, why: `its service account token (${src.serviceAccountToken.path}) is issued to the pod only; the rest of the volume is brought` });
      } else {
        const kind = Object.keys(src)[0] ?? 'unknown';
        skipped.push({ volume: v.name, why: `its ${kind} source is not brought; the rest of the volume is` });
      }
      for (const [k, e] of part) out.set(k, e);
    }
    return out;
  }
  skipped.push({ volume: v.name, why: unsupported(v)! });
  return undefined;
}

/** A mount path as a path under DIR; undefined for one that would leave it. */
export function underDir(p: string): string | undefined {
  const n = posix.normalize(`/${p}`).replace(/^\/+/, '').replace(/\/+$/, '');
  return n.split('/').includes('..') ? undefined : n;
}

export function planMounts(i: VolumeInputs): MountPlan {
  const problems: string[] = [];
  const skipped: MountPlan['skipped'] = [];
  const volumes = new Map((i.pod.spec?.volumes ?? []).map((v) => [v.name, v]));
  const entriesOf = new Map<string, Entries | undefined>();
  const files = new Map<string, PlannedFile>();
  const dirs = new Set<string>();
  // Shallower mounts first, so a mount inside another one wins, as in the container.
  const mounts = [...(i.container.volumeMounts ?? [])].sort((a, b) => a.mountPath.split('/').length - b.mountPath.split('/').length);
  for (const m of mounts) {
    const v = volumes.get(m.name);
    if (!v) continue;
    if (!entriesOf.has(m.name)) entriesOf.set(m.name, volumeEntries(v, i, problems, skipped));
    const entries = entriesOf.get(m.name);
    if (!entries) continue;
    const at = underDir(m.mountPath);
    if (at === undefined || at === '') { problems.push(`volume ${m.name}: mount path ${m.mountPath} cannot be placed under the mount directory`); continue; }
    const sub = m.subPathExpr ? expand(m.subPathExpr, (n) => i.env[n]) : m.subPath;
    const subPath = sub ? underDir(sub) : '';
    if (subPath === undefined) { problems.push(`volume ${m.name}: subPath ${sub} leaves the volume`); continue; }
    for (const f of [...files.keys()]) if (f === at || f.startsWith(`${at}/`)) files.delete(f);
    const single = subPath ? entries.get(subPath) : undefined;
    if (single) { files.set(at, { path: at, ...single }); continue; }
    dirs.add(at);
    for (const [k, e] of entries) {
      const rel = subPath ? (k.startsWith(`${subPath}/`) ? k.slice(subPath.length + 1) : undefined) : k;
      const clean = rel === undefined ? undefined : underDir(rel);
      if (!clean) continue;
      files.set(`${at}/${clean}`, { path: `${at}/${clean}`, ...e });
    }
  }
  // One line per volume is enough.
  const seen = new Set<string>();
  const once = skipped.filter((s) => { const k = `${s.volume}\0${s.why}`; if (seen.has(k)) return false; seen.add(k); return true; });
  return { files: [...files.values()].sort((a, b) => a.path.localeCompare(b.path)), dirs: [...dirs].sort(), skipped: once, problems };
}
