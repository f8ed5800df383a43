import { ApiException, type CoreV1Api, type V1Service } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { listHostsServices, unreadableLine } from '../../../../../plugins/connect/hosts/hosts-services.ts';
import type { Kube } from '../../../../../plugins/kube/kube.ts';

const svc = (name: string, namespace: string): V1Service => ({ metadata: { name, namespace }, spec: { clusterIP: '10.96.0.9', ports: [{ port: 80 }] } });
const forbidden = (): ApiException<string> => new ApiException(403, 'x', '{"message":"forbidden"}', {});

function fakeKube(o: { clusterWide?: V1Service[]; namespaces?: string[]; byNamespace: Record<string, V1Service[] | 'forbidden' | 'missing'> }): Kube & { calls: string[] } {
  const calls: string[] = [];
  const core = {
    listServiceForAllNamespaces: () => { calls.push('all'); return o.clusterWide ? Promise.resolve({ items: o.clusterWide }) : Promise.reject(forbidden()); },
    listNamespace: () => { calls.push('namespaces'); return o.namespaces ? Promise.resolve({ items: o.namespaces.map((name) => ({ metadata: { name } })) }) : Promise.reject(forbidden()); },
    listNamespacedService: ({ namespace }: { namespace: string }) => {
      calls.push(namespace);
      const r = o.byNamespace[namespace] ?? 'forbidden';
      if (r === 'forbidden') return Promise.reject(forbidden());
      if (r === 'missing') return Promise.reject(new ApiException(404, 'x', '{}', {}));
      return Promise.resolve({ items: r });
    },
  } as unknown as CoreV1Api;
  return { core, namespace: 'a', context: 'c', server: 'https://x', kc: undefined as never, calls };
}

describe('the Services hosts mode names', () => {
  it('an admin: every Service in one call', async () => {
    const k = fakeKube({ clusterWide: [svc('web', 'a'), svc('db', 'b')], byNamespace: {} });
    const l = await listHostsServices(k, []);
    expect(l.services.map((s) => `${s.name}.${s.namespace}`)).toEqual(['web.a', 'db.b']);
    expect(k.calls).toEqual(['all']);
    expect(unreadableLine(l)).toBeUndefined();
  });

  it('a namespace-scoped user who may list namespaces: each namespace it may read, one line for the others', async () => {
    const k = fakeKube({ namespaces: ['a', 'b', 'kube-system'], byNamespace: { a: [svc('web', 'a')], b: [svc('db', 'b')] } });
    const l = await listHostsServices(k, []);
    expect(l.services.map((s) => `${s.name}.${s.namespace}`)).toEqual(['web.a', 'db.b']);
    expect(l.namespaces).toEqual(['a', 'b']);
    expect(unreadableLine(l)).toBe('hosts mode: cannot list the Services of namespace kube-system (forbidden); names in it do not resolve here');
  });

  it('a user who may not list namespaces: the session\'s and --namespaces', async () => {
    const k = fakeKube({ byNamespace: { a: [svc('web', 'a')], b: [svc('db', 'b')], gone: 'missing' } });
    const l = await listHostsServices(k, ['b', 'c', 'gone']);
    expect(l.services.map((s) => `${s.name}.${s.namespace}`)).toEqual(['web.a', 'db.b']);
    expect(unreadableLine(l)).toBe('hosts mode: cannot list the Services of 2 namespaces c (forbidden), gone (does not exist); names in them do not resolve here');
  });

  it('names at most ten namespaces in its one line', () => {
    const unreadable = Array.from({ length: 13 }, (_, i) => ({ namespace: `n${i}`, why: 'forbidden' }));
    expect(unreadableLine({ services: [], unreadable, scope: 'namespaces', namespaces: [] })).toMatch(/n9 \(forbidden\) and 3 more; names in them/);
  });
});
