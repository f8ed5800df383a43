// Keeps the mounted files in step with the cluster: one watch per referenced ConfigMap and Secret,
// by name (fieldSelector metadata.name), restarted when the API server ends it. A user whose Role
// grants get but not watch on a kind is served by reading each object every 2 s instead. Events
// carry Secret values: nothing of an event is ever logged.
import { Watch, type V1ConfigMap, type V1Secret } from '@kubernetes/client-node';
import type { Logger } from '../cli/log.ts';
import { apiStatus, canI, type Kube } from '../kube/kube.ts';
import type { Refs } from './refs.ts';

export interface Objects {
  configMaps: Map<string, V1ConfigMap>;
  secrets: Map<string, V1Secret>;
}

const POLL_MS = 2000;

export async function watchObjects(kube: Kube, refs: Refs, objects: Objects, onChange: () => void, log: Logger): Promise<() => void> {
  let stopped = false;
  const aborts = new Set<AbortController>();
  const timers = new Set<NodeJS.Timeout>();
  const later = (fn: () => void, ms: number): void => {
    const t = setTimeout(() => { timers.delete(t); if (!stopped) fn(); }, ms);
    t.unref();
    timers.add(t);
  };
  // Several events in a row (a ConfigMap and a Secret edited together) give one rewrite.
  let pending = false;
  const changed = (): void => {
    if (pending || stopped) return;
    pending = true;
    later(() => { pending = false; onChange(); }, 50);
  };
  const ns = kube.namespace;
  const kinds = [
    { resource: 'configmaps', names: refs.configMaps, map: objects.configMaps as Map<string, V1ConfigMap | V1Secret>, read: (name: string) => kube.core.readNamespacedConfigMap({ namespace: ns, name }) },
    { resource: 'secrets', names: refs.secrets, map: objects.secrets as Map<string, V1ConfigMap | V1Secret>, read: (name: string) => kube.core.readNamespacedSecret({ namespace: ns, name }) },
  ];
  const fingerprint = (o: V1ConfigMap | V1Secret | undefined): string => JSON.stringify([o?.data, (o as V1ConfigMap | undefined)?.binaryData]);
  for (const k of kinds) {
    if (k.names.length === 0) continue;
    const mayWatch = await canI(kube, 'watch', k.resource, ns) !== false;
    for (const name of k.names) {
      const set = (o: V1ConfigMap | V1Secret | undefined): void => {
        if (fingerprint(o) === fingerprint(k.map.get(name))) return;
        if (o) k.map.set(name, o); else k.map.delete(name);
        log.debug(`${k.resource.slice(0, -1)}/${name} changed; updating the mounted files`);
        changed();
      };
      const poll = (): void => {
        void k.read(name).then(set, (e: unknown) => { if (apiStatus(e) === 404) set(undefined); }).finally(() => later(poll, POLL_MS));
      };
      const watch = (): void => {
        // An ended watch's controller leaves the set: a session restarts its watches for hours.
        let current: AbortController | undefined;
        let ended = false;
        const started = Date.now();
        void new Watch(kube.kc).watch(`/api/v1/namespaces/${ns}/${k.resource}`, { fieldSelector: `metadata.name=${name}` }, (phase, obj: V1ConfigMap | V1Secret) => {
          set(phase === 'DELETED' ? undefined : obj);
        }, (err: unknown) => {
          ended = true;
          if (current) aborts.delete(current);
          if (stopped) return;
          if (err) log.debug(`the watch of ${k.resource.slice(0, -1)}/${name} ended (${apiStatus(err) ?? 'connection error'}); restarting it`);
          // The API server ends a watch after its timeout: restart at once. One that ends (or fails)
          // at once, as behind a proxy that cuts long requests, waits a second: no busy loop.
          later(watch, err || Date.now() - started < 1000 ? 1000 : 0);
        }).then((a) => {
          if (stopped) a.abort();
          else if (!ended) { current = a; aborts.add(a); }
        }, () => later(watch, 1000));
      };
      if (mayWatch) watch(); else poll();
    }
  }
  return () => {
    stopped = true;
    for (const a of aborts) a.abort();
    for (const t of timers) clearTimeout(t);
  };
}
