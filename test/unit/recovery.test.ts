import { describe, expect, it } from 'vitest';
import { ANNOTATION, ROUTES_KEY, type RouteTable } from '../../contract/index.ts';
import { replaceSelectorPatch, runRecovery, updateRoutes, type RecoveryApi } from '../../contract/recovery.ts';

/** An in-memory cluster: services, deployments and configmaps, with JSON merge patch semantics. */
function fakeCluster() {
  const services = new Map<string, { selector: Record<string, string>; annotations: Record<string, string> }>();
  const deployments = new Map<string, { replicas: number; annotations: Record<string, string> }>();
  const configMaps = new Map<string, { data: Record<string, string>; resourceVersion: string }>();
  const deleted: string[] = [];
  let rv = 1;
  const merge = (target: Record<string, string>, patch: Record<string, string | null> | undefined): void => {
    const next = Object.entries({ ...target, ...(patch ?? {}) }).filter((e): e is [string, string] => e[1] !== null);
    for (const k of Object.keys(target)) Reflect.deleteProperty(target, k);
    Object.assign(target, Object.fromEntries(next));
  };
  type Patch = { metadata?: { annotations?: Record<string, string | null> }; spec?: { selector?: Record<string, string | null>; replicas?: number } };
  const api: RecoveryApi = {
    getService: async (_ns, name) => services.get(name),
    patchService: async (_ns, name, p) => {
      const s = services.get(name)!;
      merge(s.annotations, (p as Patch).metadata?.annotations);
      merge(s.selector, (p as Patch).spec?.selector);
    },
    getDeployment: async (_ns, name) => deployments.get(name),
    patchDeployment: async (_ns, name, p) => {
      const d = deployments.get(name)!;
      merge(d.annotations, (p as Patch).metadata?.annotations);
      if ((p as Patch).spec?.replicas !== undefined) d.replicas = (p as Patch).spec!.replicas!;
    },
    delete: async (kind, _ns, name) => { deleted.push(`${kind}/${name}`); },
    getConfigMap: async (_ns, name) => configMaps.get(name),
    replaceConfigMapData: async (_ns, name, data, version) => {
      const c = configMaps.get(name);
      if (!c || c.resourceVersion !== version) return false;
      configMaps.set(name, { data, resourceVersion: String(++rv) });
      return true;
    },
    deleteConfigMap: async (_ns, name) => { configMaps.delete(name); deleted.push(`ConfigMap/${name}`); },
  };
  return { api, services, deployments, configMaps, deleted };
}

const lock = (session: string, kind = 'exchange'): string => JSON.stringify({ session, user: 'u', kind, since: 0 });

describe('recovery plans', () => {
  it('a merge patch replaces a selector as a whole', () => {
    expect(replaceSelectorPatch({ app: 'echo', tier: 'web' }, { 'kt.dev/exchange': 'a' })).toEqual({ app: null, tier: null, 'kt.dev/exchange': 'a' });
  });

  it('restores the selector and scale of its own session only', async () => {
    const c = fakeCluster();
    c.services.set('mine', { selector: { 'kt.dev/exchange': 's1' }, annotations: { [ANNOTATION.lock]: lock('s1'), [ANNOTATION.originalSelector]: '{"app":"echo"}', other: 'kept' } });
    c.services.set('theirs', { selector: { 'kt.dev/exchange': 's2' }, annotations: { [ANNOTATION.lock]: lock('s2'), [ANNOTATION.originalSelector]: '{"app":"x"}' } });
    c.deployments.set('dep', { replicas: 0, annotations: { [ANNOTATION.lock]: lock('s1'), [ANNOTATION.originalReplicas]: '3' } });
    const r = await runRecovery({ session: 's1', namespace: 'ns', steps: [
      { op: 'restore-selector', service: 'mine' },
      { op: 'restore-selector', service: 'theirs' },
      { op: 'restore-replicas', deployment: 'dep' },
      { op: 'delete', kind: 'Service', name: 'preview' },
    ] }, c.api);
    expect(r.failed).toEqual([]);
    expect(c.services.get('mine')).toEqual({ selector: { app: 'echo' }, annotations: { other: 'kept' } });
    expect(c.services.get('theirs')!.selector).toEqual({ 'kt.dev/exchange': 's2' });
    expect(c.deployments.get('dep')).toEqual({ replicas: 3, annotations: {} });
    expect(c.deleted).toEqual(['Service/preview']);
    expect(r.done).toHaveLength(3);
  });

  it('drops a developer\'s routes and tears the mesh down only when none is left', async () => {
    const c = fakeCluster();
    const table: RouteTable = { header: 'kt-version', ports: [{ port: 8080, protocol: 'http' }], defaultTarget: 'svc-kt-stuntman', routes: [
      { version: 'a', target: 'a', session: 's1', user: 'u' }, { version: 'b', target: 'b', session: 's2', user: 'v' },
    ] };
    c.configMaps.set('svc-kt-routes', { data: { [ROUTES_KEY]: JSON.stringify(table) }, resourceVersion: '1' });
    c.services.set('svc', { selector: { 'kt.dev/router': 'svc' }, annotations: { [ANNOTATION.lock]: lock('s1', 'mesh'), [ANNOTATION.originalSelector]: '{"app":"svc"}' } });
    const steps = (session: string) => ({ session, namespace: 'ns', steps: [
      { op: 'remove-route' as const, configMap: 'svc-kt-routes' },
      { op: 'unmesh-if-idle' as const, service: 'svc', configMap: 'svc-kt-routes' },
    ] });
    await runRecovery(steps('s1'), c.api);
    expect(JSON.parse(c.configMaps.get('svc-kt-routes')!.data[ROUTES_KEY]!).routes.map((r: { version: string }) => r.version)).toEqual(['b']);
    expect(c.services.get('svc')!.selector).toEqual({ 'kt.dev/router': 'svc' });
    await runRecovery(steps('s2'), c.api);
    expect(c.configMaps.has('svc-kt-routes')).toBe(false);
    expect(c.services.get('svc')).toEqual({ selector: { app: 'svc' }, annotations: {} });
  });

  it('retries a route change that raced with another developer', async () => {
    const c = fakeCluster();
    const table: RouteTable = { header: 'h', ports: [], defaultTarget: 'd', routes: [] };
    c.configMaps.set('cm', { data: { [ROUTES_KEY]: JSON.stringify(table) }, resourceVersion: '1' });
    let raced = false;
    const racing: RecoveryApi = {
      ...c.api,
      replaceConfigMapData: async (ns, name, data, version) => {
        if (!raced) { raced = true; c.configMaps.set(name, { ...c.configMaps.get(name)!, resourceVersion: '99' }); return false; }
        return c.api.replaceConfigMapData(ns, name, data, version);
      },
    };
    expect(await updateRoutes(racing, 'ns', 'cm', (t) => ({ ...t, routes: [{ version: 'v', target: 't', session: 's', user: 'u' }] }))).toBe(true);
    expect(raced).toBe(true);
    expect(JSON.parse(c.configMaps.get('cm')!.data[ROUTES_KEY]!).routes).toHaveLength(1);
  });
});
