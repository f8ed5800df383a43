// The dashboard's state model: objects of a namespace in, what the page shows out.
import { describe, expect, it } from 'vitest';
import type { V1ConfigMap, V1Deployment, V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import { namespaceView } from '../../../../plugins/dashboard/model.ts';
import { renderMain, renderPage } from '../../../../plugins/dashboard/page.ts';
import { dashboard } from '../../../../plugins/dashboard/model.ts';
import type { LocalSession } from '../../../../plugins/session/local-state.ts';

const T0 = Date.parse('2026-03-01T10:00:00Z');
const at = (ms: number): Date => new Date(ms);
const KT = { 'app.kubernetes.io/managed-by': 'kt' };

function svc(name: string, selector: Record<string, string>, annotations: Record<string, string> = {}, labels: Record<string, string> = {}): V1Service {
  return { metadata: { name, namespace: 'dev', annotations, labels }, spec: { selector, clusterIP: '10.0.0.1', ports: [{ port: 80, protocol: 'TCP' }] } };
}
function pod(name: string, labels: Record<string, string>, o: { kind?: string; user?: string; beat?: number; ready?: boolean } = {}): V1Pod {
  return {
    metadata: {
      name, namespace: 'dev', labels, creationTimestamp: at(T0),
      annotations: o.kind ? { 'kt.dev/kind': o.kind, 'kt.dev/user': o.user ?? 'ann@lap', 'kt.dev/target': 'service/echo' } : {},
      managedFields: o.beat === undefined ? [] : [{ manager: 'kt-heartbeat', time: at(o.beat) }],
    },
    spec: { containers: [{ name: 'c' }] },
    status: { phase: 'Running', conditions: [{ type: 'Ready', status: o.ready === false ? 'False' : 'True' }] },
  };
}
function slice(service: string, pods: string[]): V1EndpointSlice {
  return { metadata: { name: `${service}-x`, namespace: 'dev', labels: { 'kubernetes.io/service-name': service } }, addressType: 'IPv4', endpoints: pods.map((p) => ({ addresses: ['10.1.0.1'], targetRef: { kind: 'Pod', name: p }, conditions: { ready: true } })) };
}
const lock = (session: string, user: string, kind: 'exchange' | 'mesh', since = T0): string => JSON.stringify({ session, user, kind, since });
const shadowLabels = (id: string, extra: Record<string, string> = {}): Record<string, string> => ({ ...KT, 'kt.dev/role': 'shadow', 'kt.dev/session': id, ...extra });

describe('namespaceView', () => {
  it('a natural Service, and the pods serving it from its EndpointSlices', () => {
    const v = namespaceView({ namespace: 'dev', services: [svc('echo', { app: 'echo' })], pods: [pod('echo-1', { app: 'echo' })], endpointSlices: [slice('echo', ['echo-1'])] }, T0, []);
    expect(v.services).toEqual([{ name: 'echo', type: 'ClusterIP', clusterIP: '10.0.0.1', ports: ['80/TCP'], state: 'natural', serving: [{ name: 'echo-1', role: 'real', ready: true }] }]);
    expect(v.sessions).toEqual([]);
  });

  it('an exchange (selector mode): who, since when, heartbeat age by the cluster clock, the shadow serving', () => {
    const id = 'aaaaaaaaaa';
    const v = namespaceView({
      namespace: 'dev',
      services: [svc('echo', { 'kt.dev/exchange': id }, { 'kt.dev/lock': lock(id, 'ann@lap', 'exchange', T0 + 1000), 'kt.dev/original-selector': '{"app":"echo"}' })],
      pods: [pod(`kt-exchange-${id}`, shadowLabels(id, { 'kt.dev/exchange': id }), { kind: 'exchange', beat: T0 + 20_000 }), pod('echo-1', { app: 'echo' })],
      endpointSlices: [slice('echo', [`kt-exchange-${id}`])],
    }, T0 + 30_000, []);
    const s = v.services[0]!;
    expect(s.state).toBe('exchanged');
    expect(s.exchange).toEqual({ session: id, user: 'ann@lap', state: 'healthy', since: '2026-03-01T10:00:01Z', heartbeatAgeSeconds: 10, mode: 'selector' });
    expect(s.serving).toEqual([{ name: `kt-exchange-${id}`, role: 'shadow', ready: true, session: id }]);
    expect(s.attention).toBeUndefined();
    expect(v.sessions[0]).toMatchObject({ metadata: { name: id }, status: { state: 'healthy' }, cleanable: false });
  });

  it('an exchange whose laptop died is highlighted, and its session may be cleaned; one whose pods are gone says so', () => {
    const id = 'bbbbbbbbbb';
    const rec: LocalSession = { id, kind: 'exchange', pid: 99, namespace: 'dev', context: 'c', server: 's', startedAt: T0, updatedAt: T0, details: {} };
    const objs = {
      namespace: 'dev',
      services: [svc('echo', { 'kt.dev/exchange': id }, { 'kt.dev/lock': lock(id, 'bob@lap', 'exchange') }), svc('other', { 'kt.dev/exchange': 'cccccccccc' }, { 'kt.dev/lock': lock('cccccccccc', 'cy@lap', 'exchange') })],
      pods: [pod(`kt-exchange-${id}`, shadowLabels(id), { kind: 'exchange', user: 'bob@lap', beat: T0 })],
    };
    const v = namespaceView(objs, T0 + 5000, [rec], () => false);
    expect(v.services[0]!.attention).toBe(`session ${id} of bob@lap is orphaned`);
    expect(v.services[1]!.exchange!.state).toBe('gone');
    expect(v.services[1]!.attention).toContain('gone');
    expect(v.sessions[0]).toMatchObject({ status: { state: 'orphaned' }, cleanable: true });
    // Without the local record, only the heartbeat counts: stale after 3 minutes of cluster time.
    expect(namespaceView(objs, T0 + 200_000, []).sessions[0]).toMatchObject({ status: { state: 'stale' }, cleanable: true });
  });

  it('an exchange in scale mode: the lock on the Deployment whose pods the Service selects', () => {
    const id = 'dddddddddd';
    const dep: V1Deployment = {
      metadata: { name: 'echo', namespace: 'dev', annotations: { 'kt.dev/lock': lock(id, 'dee@lap', 'exchange'), 'kt.dev/original-replicas': '2' } },
      spec: { replicas: 0, selector: { matchLabels: { app: 'echo' } }, template: { metadata: { labels: { app: 'echo' } } } },
    };
    const v = namespaceView({ namespace: 'dev', services: [svc('echo', { app: 'echo' })], deployments: [dep], pods: [pod(`kt-exchange-${id}`, shadowLabels(id, { app: 'echo' }), { kind: 'exchange', beat: T0 })] }, T0, []);
    expect(v.services[0]).toMatchObject({ state: 'exchanged', exchange: { mode: 'scale', deployment: 'echo', user: 'dee@lap', state: 'healthy' } });
    // Serving guessed from the selector when EndpointSlices are not readable.
    expect(v.services[0]!.serving).toEqual([{ name: `kt-exchange-${id}`, role: 'shadow', ready: true, session: id }]);
  });

  it('a mesh: router, real-pods Service, each developer\'s mark and route; its helper Services are not listed apart', () => {
    const [a, b] = ['eeeeeeeeee', 'ffffffffff'];
    const table = { contract: '1.0', header: 'kt-version', ports: [{ port: 80, protocol: 'http' }], defaultTarget: 'echo-kt-stuntman', routes: [
      { version: 'alice', target: `echo-kt-${a}`, session: a, user: 'alice@lap' }, { version: 'bob', target: `echo-kt-${b}`, session: b, user: 'bob@lap' }] };
    const cm: V1ConfigMap = { metadata: { name: 'echo-kt-routes', namespace: 'dev', labels: KT }, data: { 'routes.json': JSON.stringify(table) } };
    const helper = (name: string): V1Service => svc(name, {}, { 'kt.dev/kind': 'mesh' }, { ...KT, 'kt.dev/role': 'service' });
    const v = namespaceView({
      namespace: 'dev',
      services: [svc('echo', { 'kt.dev/router': 'echo' }, { 'kt.dev/lock': lock(a, 'alice@lap', 'mesh') }), helper('echo-kt-stuntman'), helper(`echo-kt-${a}`)],
      configMaps: [cm],
      pods: [
        pod(`kt-mesh-${a}`, shadowLabels(a), { kind: 'mesh', user: 'alice@lap', beat: T0 + 190_000 }), pod(`kt-mesh-${b}`, shadowLabels(b), { kind: 'mesh', user: 'bob@lap', beat: T0 }),
        pod('echo-kt-router-1', { ...KT, 'kt.dev/role': 'router', 'kt.dev/router': 'echo' }),
      ],
      endpointSlices: [slice('echo', ['echo-kt-router-1'])],
    }, T0 + 200_000, []);
    expect(v.services.map((s) => s.name)).toEqual(['echo']);
    const m = v.services[0]!;
    expect(m.state).toBe('meshed');
    expect(m.mesh).toMatchObject({ router: 'echo-kt-router', stuntman: 'echo-kt-stuntman', header: 'kt-version' });
    expect(m.mesh!.routes.map((r) => [r.mark, r.user, r.state])).toEqual([['alice', 'alice@lap', 'healthy'], ['bob', 'bob@lap', 'stale']]);
    expect(m.serving).toEqual([{ name: 'echo-kt-router-1', role: 'router', ready: true }]);
    expect(m.attention).toBe(`session ${b} of bob@lap is stale`);
  });

  it('a preview; and what the user may not see is carried to the page', () => {
    const id = '1111111111';
    const v = namespaceView({
      namespace: 'dev', hidden: ['list deployments in namespace "dev" (deployments: exchanges in scale mode)'],
      services: [svc('mine', { 'kt.dev/preview': id }, { 'kt.dev/kind': 'preview', 'kt.dev/user': 'pat@lap' }, { ...KT, 'kt.dev/role': 'service', 'kt.dev/session': id })],
      pods: [pod(`kt-preview-${id}`, shadowLabels(id, { 'kt.dev/preview': id }), { kind: 'preview', user: 'pat@lap', beat: T0 })],
    }, T0, []);
    expect(v.services[0]).toMatchObject({ state: 'previewed', preview: { session: id, user: 'pat@lap', state: 'healthy' } });
    expect(v.hidden).toHaveLength(1);
  });
});

describe('the page', () => {
  it('escapes what comes from the cluster, labels its actions and draws the routing', () => {
    const id = 'aaaaaaaaaa';
    const rec: LocalSession = { id, kind: 'exchange', pid: 99, namespace: 'dev', context: 'c', server: 's', startedAt: T0, updatedAt: T0, details: {} };
    const v = namespaceView({
      namespace: 'dev',
      services: [svc('echo', { 'kt.dev/exchange': id }, { 'kt.dev/lock': lock(id, '<img src=x onerror=alert(1)>', 'exchange') })],
      pods: [pod(`kt-exchange-${id}`, shadowLabels(id), { kind: 'exchange', user: '<img src=x onerror=alert(1)>', beat: T0 })],
    }, T0, [rec], () => false);
    const html = renderMain(dashboard([v], T0));
    expect(html).not.toContain('<img');
    expect(html).toContain('&lt;img src=x onerror=alert(1)&gt;');
    expect(html).toContain(`aria-label="Clean orphaned session ${id} of &lt;img`);
    expect(html).toMatch(/<svg class="route" role="img" aria-label="service echo goes to shadow pod/);
    const page = renderPage(dashboard([v], T0), { nonce: 'n0nce', scope: 'namespace dev', generation: 1 });
    expect(page).toContain('<script nonce="n0nce">');
    expect(page).not.toMatch(/<script(?! nonce)/);
    expect(page).not.toMatch(/https?:\/\//);
  });

  it('first render of 50 Services is fast', () => {
    const services = Array.from({ length: 50 }, (_, i) => svc(`svc-${i}`, { app: `a${i}` }));
    const pods = Array.from({ length: 50 }, (_, i) => pod(`p-${i}`, { app: `a${i}` }));
    const t0 = performance.now();
    const html = renderPage(dashboard([namespaceView({ namespace: 'dev', services, pods }, T0, [])], T0), { nonce: 'n', scope: 'dev', generation: 0 });
    const took = performance.now() - t0;
    expect(html.match(/<tr class="svc/g)).toHaveLength(50);
    expect(took).toBeLessThan(100);
  });
});
