import { describe, expect, it } from 'vitest';
import { ANNOTATION, ROUTES_KEY, type RouteTable } from '../../../contract/index.ts';
import { replaceSelectorPatch, runRecovery, updateRoutes, type EndpointView, type RecoveryApi, type RecoveryTiming } from '../../../contract/recovery.ts';

/** An in-memory cluster: services, deployments and configmaps, with JSON merge patch semantics. */
function fakeCluster() {
  const services = new Map<string, { selector: Record<string, string>; annotations: Record<string, string> }>();
  const deployments = new Map<string, { replicas: number; annotations: Record<string, string> }>();
  const configMaps = new Map<string, { data: Record<string, string>; resourceVersion: string }>();
  const deleted: string[] = [];
  /** Service name -> its endpoints; by default they follow the selector at once. */
  const endpoints = new Map<string, EndpointView[]>();
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
    listEndpoints: async (_ns, service) => endpoints.get(service) ?? [],
    deleteDeploymentForeground: async (_ns, name) => { deployments.delete(name); deleted.push(`Deployment/${name}`); },
  };
  return { api, services, deployments, configMaps, deleted, endpoints };
}

const FAST: RecoveryTiming = { endpointsMs: 50, routerGoneMs: 50, pollMs: 1 };

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
    await runRecovery(steps('s2'), c.api, FAST);
    expect(c.configMaps.has('svc-kt-routes')).toBe(false);
    expect(c.services.get('svc')).toEqual({ selector: { app: 'svc' }, annotations: {} });
    expect(c.deleted).toEqual(['Deployment/svc-kt-router', 'ConfigMap/svc-kt-routes']);
  });

  describe('the last developer out', () => {
    const idleMesh = () => {
      const c = fakeCluster();
      const table: RouteTable = { header: 'kt-version', ports: [{ port: 8080, protocol: 'http' }], defaultTarget: 'svc-kt-stuntman', routes: [] };
      c.configMaps.set('svc-kt-routes', { data: { [ROUTES_KEY]: JSON.stringify(table) }, resourceVersion: '1' });
      c.services.set('svc', { selector: { 'kt.dev/router': 'svc' }, annotations: { [ANNOTATION.lock]: lock('s1', 'mesh'), [ANNOTATION.originalSelector]: '{"app":"svc"}' } });
      c.deployments.set('svc-kt-router', { replicas: 1, annotations: {} });
      c.endpoints.set('svc', [{ address: '10.0.0.9', ready: true, pod: 'svc-kt-router-7d9f-abcde' }]);
      c.endpoints.set('svc-kt-stuntman', [{ address: '10.0.0.1', ready: true, pod: 'svc-5f6-xyz' }, { address: '10.0.0.2', ready: true, pod: 'svc-5f6-uvw' }]);
      return c;
    };
    const plan = { session: 's1', namespace: 'ns', steps: [{ op: 'unmesh-if-idle' as const, service: 'svc', configMap: 'svc-kt-routes' }] };

    it('deletes the router only once the endpoints left it and list every real pod', async () => {
      const c = idleMesh();
      const listed: string[][] = [];
      const api: RecoveryApi = {
        ...c.api,
        listEndpoints: async (ns, service) => {
          const own = await c.api.listEndpoints(ns, service);
          if (service === 'svc') {
            listed.push(own.map((e) => e.address));
            expect(c.deleted).toEqual([]);
            // The controller catches up one real pod per look.
            c.endpoints.set('svc', c.endpoints.get('svc-kt-stuntman')!.slice(0, listed.length - 1));
          }
          return own;
        },
      };
      const r = await runRecovery(plan, api, FAST);
      expect(r.failed).toEqual([]);
      expect(listed).toEqual([['10.0.0.9'], [], ['10.0.0.1'], ['10.0.0.1', '10.0.0.2']]);
      expect(c.deleted).toEqual(['Deployment/svc-kt-router', 'ConfigMap/svc-kt-routes']);
      expect(r.done[0]).not.toContain('warning');
    });

    it('says so when the endpoints never move, and removes the router anyway', async () => {
      const c = idleMesh();
      const r = await runRecovery(plan, c.api, FAST);
      expect(r.done[0]).toMatch(/warning: its endpoints still listed the router after/);
      expect(c.configMaps.has('svc-kt-routes')).toBe(false);
    });

    it('without the rights for the careful way it still removes everything', async () => {
      const c = idleMesh();
      const refused = (): Promise<never> => Promise.reject(new Error('HTTP 403'));
      const r = await runRecovery(plan, { ...c.api, listEndpoints: refused, deleteDeploymentForeground: refused }, FAST);
      expect(r.failed).toEqual([]);
      expect(r.done[0]).toMatch(/could not read its endpoints.*could not let the router drain first/);
      expect(c.deleted).toEqual(['ConfigMap/svc-kt-routes']);
    });

    it('keeps the router when another developer joined while the endpoints moved', async () => {
      const c = idleMesh();
      c.endpoints.set('svc', c.endpoints.get('svc-kt-stuntman')!);
      const api: RecoveryApi = {
        ...c.api,
        listEndpoints: async (ns, service) => {
          const table = { header: 'kt-version', ports: [{ port: 8080, protocol: 'http' }], defaultTarget: 'd', routes: [{ version: 'v', target: 't', session: 's9', user: 'w' }] };
          c.configMaps.set('svc-kt-routes', { data: { [ROUTES_KEY]: JSON.stringify(table) }, resourceVersion: '7' });
          return c.api.listEndpoints(ns, service);
        },
      };
      const r = await runRecovery(plan, api, FAST);
      expect(r.done[0]).toMatch(/another developer joined meanwhile/);
      expect(c.deleted).toEqual([]);
    });
  });

  it('retries a route change that raced with another developer', async () => {
    const c = fakeCluster();
    const table: RouteTable = { header: 'h', ports: [{ port: 8080, protocol: 'http' }], defaultTarget: 'd', routes: [] };
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
