import type { V1EndpointSlice, V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { ExchangeSwitch, SWITCH_TIMING } from '../../../../plugins/exchange/switch.ts';
import type { Kube } from '../../../../plugins/kube/kube.ts';
import type { Logger } from '../../../../plugins/cli/log.ts';
import { Interrupted, noteSignal } from '../../../../plugins/session/steps.ts';
import type { Tunnel } from '../../../../plugins/tunnel/tunnel.ts';

const slice = (pods: string[]): V1EndpointSlice => ({
  addressType: 'IPv4',
  endpoints: pods.map((pod, i) => ({ addresses: [`10.0.0.${i + 1}`], conditions: { ready: true }, targetRef: { kind: 'Pod', name: pod } })),
});

/** A cluster whose Service keeps listing `pods`, and a log that keeps its warnings. */
function fixture(pods: () => string[]): { sw: ExchangeSwitch; warnings: string[] } {
  const warnings: string[] = [];
  const log = { debug: () => {}, info: () => {}, progress: () => {}, warn: (m: string) => warnings.push(m) } as unknown as Logger;
  const api = { listNamespacedEndpointSlice: () => Promise.resolve({ items: [slice(pods())] }) };
  const core = { listNamespacedPod: () => Promise.resolve({ items: pods().map((name) => ({ metadata: { name }, status: { conditions: [{ type: 'Ready', status: 'True' }] } })) }) };
  const kube = { namespace: 'team-a', server: 'https://api.example:6443', core, kc: { makeApiClient: () => api } } as unknown as Kube;
  const svc: V1Service = { metadata: { name: 'echo' }, spec: { clusterIP: 'None' } };
  const sw = new ExchangeSwitch({ kube, tunnel: {} as Tunnel, log, svc, servicePort: 80, shadowPod: 'kt-exchange-abc', mode: 'selector', original: { app: 'echo' } });
  return { sw, warnings };
}

describe('the exchange switch', () => {
  it('a Ctrl-C ends the start-up wait for the endpoints at once, and the wait on exit still runs', async () => {
    SWITCH_TIMING.pollMs = 10;
    SWITCH_TIMING.drainMs = 0;
    // The endpoints never list the shadow alone: without the interrupt, start-up waits endpointsMs (30 s).
    const { sw } = fixture(() => ['echo-1']);
    const waiting = sw.switched();
    setTimeout(() => noteSignal('SIGINT'), 50);
    const t0 = Date.now();
    await expect(waiting).rejects.toBeInstanceOf(Interrupted);
    expect(Date.now() - t0).toBeLessThan(2000);

    // On exit the signal is already noted; the Service moved back is still waited for and seen.
    const { sw: back, warnings } = fixture(() => ['echo-1']);
    await back.restored();
    expect(warnings).toEqual([]);
  });
});
