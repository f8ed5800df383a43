import { describe, expect, it } from 'vitest';
import { ANNOTATION } from '../../../contract/index.ts';
import { runRecovery, type EndpointView, type RecoveryApi, type RecoveryTiming } from '../../../contract/recovery.ts';

const lock = JSON.stringify({ session: 's1', user: 'u', kind: 'exchange', since: 0 });
const FAST: RecoveryTiming = { endpointsMs: 50, routerGoneMs: 50, pollMs: 5, replicasMs: 300 };

/**
 * A Deployment scaled back whose pods turn Ready after `readyAfter` reads and appear in the
 * Service's endpoints after `listedAfter` reads; the session's shadow is listed all along.
 */
function fake(readyAfter: number, listedAfter: number) {
  const dep = { replicas: 0, annotations: { [ANNOTATION.lock]: lock, [ANNOTATION.originalReplicas]: '2' } as Record<string, string>, readyReplicas: 0 };
  let reads = 0;
  let lists = 0;
  const shadow: EndpointView = { address: '10.0.0.9', ready: true, pod: 'kt-exchange-s1' };
  const api: Pick<RecoveryApi, 'getDeployment' | 'patchDeployment' | 'listEndpoints'> = {
    getDeployment: async () => ({ ...dep, readyReplicas: ++reads > readyAfter ? dep.replicas : 0, observed: true }),
    patchDeployment: async (_ns, _name, p) => {
      const patch = p as { metadata: { annotations: Record<string, string | null> }; spec: { replicas: number } };
      for (const [k, v] of Object.entries(patch.metadata.annotations)) if (v === null) Reflect.deleteProperty(dep.annotations, k);
      dep.replicas = patch.spec.replicas;
    },
    listEndpoints: async () => (++lists > listedAfter
      ? [shadow, { address: '10.0.0.1', ready: true, pod: 'echo-a' }, { address: '10.0.0.2', ready: true, pod: 'echo-b' }]
      : [shadow, { address: '10.0.0.1', ready: false, pod: 'echo-a' }]),
  };
  return { api: api as RecoveryApi, dep, counts: () => ({ reads, lists }) };
}

describe('restore-replicas', () => {
  it('waits until the pods are Ready and in the Service\'s endpoints (the shadow not counted)', async () => {
    const f = fake(3, 4);
    const r = await runRecovery({ session: 's1', namespace: 'ns', steps: [{ op: 'restore-replicas', deployment: 'echo', service: 'echo' }] }, f.api, FAST);
    expect(r.failed).toEqual([]);
    expect(r.done).toEqual(['scaled deployment/echo back to 2 (its pods Ready and in service/echo\'s endpoints)']);
    expect(f.dep.replicas).toBe(2);
    expect(f.counts().lists).toBe(5);
  });

  it('says so when its bound passes, and still restores', async () => {
    const f = fake(1, 1_000_000);
    const r = await runRecovery({ session: 's1', namespace: 'ns', steps: [{ op: 'restore-replicas', deployment: 'echo', service: 'echo' }] }, f.api, FAST);
    expect(r.done[0]).toMatch(/^scaled deployment\/echo back to 2; warning: not serving after 0 s \(2 of 2 pods Ready, 0 in service\/echo's endpoints\)/);
    expect(f.dep.replicas).toBe(2);
  });

  it('with the Service still pointed at the shadow (a start stopped midway), waits for Ready only, then restore-selector gives the selector back', async () => {
    const f = fake(2, 1_000_000);
    const svc = { selector: { 'kt.dev/exchange': 's1' } as Record<string, string>, annotations: { [ANNOTATION.lock]: lock, [ANNOTATION.originalSelector]: '{"app":"echo"}' } as Record<string, string> };
    const order: string[] = [];
    const api: RecoveryApi = {
      ...f.api,
      patchDeployment: async (...a) => { order.push('scale back'); await f.api.patchDeployment(...a); },
      getService: async () => ({ selector: { ...svc.selector }, annotations: { ...svc.annotations } }),
      patchService: async (_ns, _name, p) => {
        order.push('restore selector');
        svc.selector = (p as { spec: { selector: Record<string, string | null> } }).spec.selector as Record<string, string>;
      },
    };
    const plan = { session: 's1', namespace: 'ns', steps: [{ op: 'restore-replicas' as const, deployment: 'echo', service: 'echo' }, { op: 'restore-selector' as const, service: 'echo' }] };
    const r = await runRecovery(plan, api, FAST);
    expect(r.failed).toEqual([]);
    expect(r.done).toEqual(['scaled deployment/echo back to 2 (its pods Ready)', 'restored the selector of service/echo']);
    expect(order).toEqual(['scale back', 'restore selector']);
    expect(svc.selector).toEqual({ 'kt.dev/exchange': null, app: 'echo' });
    expect(f.counts().lists).toBe(0);
  });

  it('without a Service, waits for Ready only', async () => {
    const f = fake(2, 1_000_000);
    const r = await runRecovery({ session: 's1', namespace: 'ns', steps: [{ op: 'restore-replicas', deployment: 'echo' }] }, f.api, FAST);
    expect(r.done).toEqual(['scaled deployment/echo back to 2 (its pods Ready)']);
    expect(f.counts().lists).toBe(0);
  });
});
