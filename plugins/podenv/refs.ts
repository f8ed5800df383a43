// The ConfigMaps and Secrets a container reads (its env, and the volumes it mounts): exactly these
// are read, by name, and watched.
import type { V1Container, V1PodSpec } from '@kubernetes/client-node';

export interface Refs {
  configMaps: string[];
  secrets: string[];
}

export function referencedObjects(spec: V1PodSpec | undefined, container: V1Container, want: { env: boolean; mounts: boolean }): Refs {
  const cms = new Set<string>();
  const secrets = new Set<string>();
  if (want.env) {
    for (const f of container.envFrom ?? []) {
      if (f.configMapRef?.name) cms.add(f.configMapRef.name);
      if (f.secretRef?.name) secrets.add(f.secretRef.name);
    }
    for (const e of container.env ?? []) {
      if (e.value) continue;
      if (e.valueFrom?.configMapKeyRef?.name) cms.add(e.valueFrom.configMapKeyRef.name);
      if (e.valueFrom?.secretKeyRef?.name) secrets.add(e.valueFrom.secretKeyRef.name);
    }
  }
  if (want.mounts) {
    const mounted = new Set((container.volumeMounts ?? []).map((m) => m.name));
    for (const v of spec?.volumes ?? []) {
      if (!mounted.has(v.name)) continue;
      if (v.configMap?.name) cms.add(v.configMap.name);
      if (v.secret?.secretName) secrets.add(v.secret.secretName);
      for (const s of v.projected?.sources ?? []) {
        if (s.configMap?.name) cms.add(s.configMap.name);
        if (s.secret?.name) secrets.add(s.secret.name);
      }
    }
  }
  return { configMaps: [...cms].sort(), secrets: [...secrets].sort() };
}
