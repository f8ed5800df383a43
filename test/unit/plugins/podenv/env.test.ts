import { describe, expect, it } from 'vitest';
import type { V1ConfigMap, V1Container, V1Pod, V1Secret, V1Service } from '@kubernetes/client-node';
import { buildEnv, expand, fieldValue, formatMap, serviceLinkEnv } from '../../../../plugins/podenv/env.ts';
import { parseQuantity, resourceValue } from '../../../../plugins/podenv/quantity.ts';
import { referencedObjects } from '../../../../plugins/podenv/refs.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const pod = (container: V1Container, extra: Partial<V1Pod['spec']> = {}): V1Pod => ({
  metadata: { name: 'api-7d9-x', namespace: 'dev', uid: 'u-1', labels: { app: 'api', tier: 'be' }, annotations: { note: 'a "q"' } },
  spec: { containers: [container], nodeName: 'node-1', serviceAccountName: 'api-sa', ...extra },
  status: { podIP: '10.1.0.5', podIPs: [{ ip: '10.1.0.5' }, { ip: 'fd00::5' }], hostIP: '192.168.1.2', hostIPs: [{ ip: '192.168.1.2' }] },
});
const svc = (name: string, ip: string, ports: { port: number; name?: string; protocol?: string }[], ns = 'dev'): V1Service => ({ metadata: { name, namespace: ns }, spec: { clusterIP: ip, ports } });
const maps = <T>(o: Record<string, T>): Map<string, T> => new Map(Object.entries(o));

describe('expand ($(VAR) as the kubelet does)', () => {
  const m = (n: string): string | undefined => ({ A: 'x', B: '$(A)' } as Record<string, string>)[n];
  it.each([
    ['$(A)', 'x'], ['pre-$(A)-post', 'pre-x-post'], ['$$(A)', '$(A)'], ['$$$(A)', '$x'], ['$(B)', '$(A)'],
    ['$(MISSING)', '$(MISSING)'], ['$(A', '$(A'], ['$A', '$A'], ['a$', 'a$'], ['$$', '$'], ['$()', '$()'], ['$(A)$(A)', 'xx'],
  ])('%s -> %s', (input, out) => { expect(expand(input, m)).toBe(out); });
});

describe('service link variables', () => {
  it('names every port, the first twice, docker-link style', () => {
    expect(serviceLinkEnv([svc('my-db', '10.96.0.9', [{ port: 5432, name: 'pg' }, { port: 9187, name: 'metrics-http', protocol: 'UDP' }])])).toEqual({
      MY_DB_SERVICE_HOST: '10.96.0.9', MY_DB_SERVICE_PORT: '5432', MY_DB_SERVICE_PORT_PG: '5432', MY_DB_SERVICE_PORT_METRICS_HTTP: '9187',
      MY_DB_PORT: 'tcp://10.96.0.9:5432',
      MY_DB_PORT_5432_TCP: 'tcp://10.96.0.9:5432', MY_DB_PORT_5432_TCP_PROTO: 'tcp', MY_DB_PORT_5432_TCP_PORT: '5432', MY_DB_PORT_5432_TCP_ADDR: '10.96.0.9',
      MY_DB_PORT_9187_UDP: 'udp://10.96.0.9:9187', MY_DB_PORT_9187_UDP_PROTO: 'udp', MY_DB_PORT_9187_UDP_PORT: '9187', MY_DB_PORT_9187_UDP_ADDR: '10.96.0.9',
    });
  });
  it('skips headless Services and brackets IPv6', () => {
    expect(serviceLinkEnv([svc('h', 'None', [{ port: 1 }])])).toEqual({});
    expect(serviceLinkEnv([svc('v6', 'fd00::1', [{ port: 80 }])]).V6_PORT).toBe('tcp://[fd00::1]:80');
  });
});

describe('buildEnv', () => {
  const cm: V1ConfigMap = { metadata: { name: 'cfg' }, data: { LEVEL: 'debug', URL: 'http://db', 'dotted.key': 'ok' } };
  const sec: V1Secret = { metadata: { name: 'creds' }, data: { PASSWORD: b64('s3cr"et\n'), LEVEL: b64('from-secret') } };
  const inputs = (c: V1Container, extra: Partial<V1Pod['spec']> = {}, services: V1Service[] = []) => ({
    pod: pod(c, extra), container: c, configMaps: maps({ cfg: cm }), secrets: maps({ creds: sec }), services,
    masterService: svc('kubernetes', '10.96.0.1', [{ port: 443, name: 'https' }], 'default'),
  });

  it('covers every source, in the kubelet\'s precedence', () => {
    const c: V1Container = {
      name: 'app',
      envFrom: [{ configMapRef: { name: 'cfg' } }, { secretRef: { name: 'creds' }, prefix: 'S_' }, { configMapRef: { name: 'gone', optional: true } }],
      resources: { limits: { cpu: '500m', memory: '128Mi' }, requests: { cpu: '250m', memory: '64Mi' } },
      env: [
        { name: 'LEVEL', value: 'info' },
        { name: 'LIT', value: 'a $(LEVEL) $$(LEVEL) $(S_PASSWORD) $(LATER) $(DB_SERVICE_HOST)' },
        { name: 'FROM_CM', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'URL' } } },
        { name: 'FROM_SECRET', valueFrom: { secretKeyRef: { name: 'creds', key: 'PASSWORD' } } },
        { name: 'OPT_KEY', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'nope', optional: true } } },
        { name: 'OPT_OBJ', valueFrom: { secretKeyRef: { name: 'nobody', key: 'x', optional: true } } },
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_IPS', valueFrom: { fieldRef: { fieldPath: 'status.podIPs' } } },
        { name: 'TIER', valueFrom: { fieldRef: { fieldPath: 'metadata.labels[\'tier\']' } } },
        { name: 'CPU_M', valueFrom: { resourceFieldRef: { resource: 'limits.cpu', divisor: '1m' } } },
        { name: 'MEM_MI', valueFrom: { resourceFieldRef: { resource: 'requests.memory', divisor: '1Mi' } } },
        { name: 'EMPTY', value: '' },
        { name: 'LATER', value: 'late' },
        { name: 'KUBERNETES_SERVICE_PORT', value: 'mine' },
      ],
    };
    const r = buildEnv(inputs(c, {}, [svc('db', '10.96.3.3', [{ port: 5432 }])]));
    expect(r.problems).toEqual([]);
    expect(r.env.LEVEL).toBe('info');
    expect(r.env['dotted.key']).toBe('ok');
    expect(r.env.S_LEVEL).toBe('from-secret');
    expect(r.env.URL).toBe('http://db');
    expect(r.env.LIT).toBe('a info $(LEVEL) s3cr"et\n $(LATER) 10.96.3.3');
    expect(r.env.FROM_CM).toBe('http://db');
    expect(r.env.FROM_SECRET).toBe('s3cr"et\n');
    expect('OPT_KEY' in r.env || 'OPT_OBJ' in r.env).toBe(false);
    expect(r.env.POD_NAME).toBe('api-7d9-x');
    expect(r.env.POD_IPS).toBe('10.1.0.5,fd00::5');
    expect(r.env.TIER).toBe('be');
    expect(r.env.CPU_M).toBe('500');
    expect(r.env.MEM_MI).toBe('64');
    expect(r.env.EMPTY).toBe('');
    expect(r.env.KUBERNETES_SERVICE_PORT).toBe('mine');
    expect(r.env.KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
    expect(r.env.DB_PORT).toBe('tcp://10.96.3.3:5432');
  });

  it('without service links keeps only the master Service; a namespace Service of the same name wins with them', () => {
    const c: V1Container = { name: 'app' };
    const off = buildEnv(inputs(c, { enableServiceLinks: false }, [svc('db', '10.96.3.3', [{ port: 1 }])]));
    expect(off.env.DB_SERVICE_HOST).toBeUndefined();
    expect(off.env.KUBERNETES_SERVICE_HOST).toBe('10.96.0.1');
    const on = buildEnv(inputs(c, {}, [svc('kubernetes', '10.96.7.7', [{ port: 80 }])]));
    expect(on.env.KUBERNETES_SERVICE_HOST).toBe('10.96.7.7');
  });

  it('names missing required objects and keys', () => {
    const c: V1Container = { name: 'app', envFrom: [{ secretRef: { name: 'nobody' } }], env: [{ name: 'K', valueFrom: { configMapKeyRef: { name: 'cfg', key: 'nope' } } }] };
    expect(buildEnv(inputs(c)).problems).toEqual(['secret/nobody (envFrom) does not exist in namespace "dev"', 'K: configmap/cfg has no key "nope"']);
  });
});

describe('downward API fields and resources', () => {
  const p = pod({ name: 'c' });
  it('formats whole maps as sorted key="value" lines', () => {
    expect(formatMap({ b: '2', a: 'x"y' })).toBe('a="x\\"y"\nb="2"');
    expect(fieldValue(p, 'metadata.annotations')).toBe('note="a \\"q\\""');
    expect(fieldValue(p, 'spec.serviceAccountName')).toBe('api-sa');
    expect(fieldValue(p, 'status.hostIP')).toBe('192.168.1.2');
    expect(fieldValue(p, 'nope')).toBeUndefined();
  });
  it('rounds up quantity / divisor; an unset limit is the node\'s allocatable', () => {
    expect(parseQuantity('1.5Gi')).toBe(1.5 * 2 ** 30);
    expect(parseQuantity('1e3')).toBe(1000);
    expect(parseQuantity('abc')).toBeUndefined();
    const c: V1Container = { name: 'c', resources: { limits: { cpu: '1500m' }, requests: { memory: '100M' } } };
    expect(resourceValue({ resource: 'limits.cpu' }, p, c)).toBe('2');
    expect(resourceValue({ resource: 'limits.cpu', divisor: '100m' }, p, c)).toBe('15');
    expect(resourceValue({ resource: 'requests.memory', divisor: '1Mi' }, p, c)).toBe('96');
    expect(resourceValue({ resource: 'requests.cpu' }, p, c)).toBe('0');
    expect(resourceValue({ resource: 'limits.memory' }, p, c)).toBeUndefined();
    expect(resourceValue({ resource: 'limits.memory' }, p, c, { memory: '2Gi' })).toBe(String(2 * 2 ** 30));
  });
});

describe('referencedObjects', () => {
  it('lists exactly what the env and the mounted volumes read', () => {
    const c: V1Container = {
      name: 'c', envFrom: [{ configMapRef: { name: 'a' } }, { secretRef: { name: 's1' } }],
      env: [{ name: 'X', valueFrom: { secretKeyRef: { name: 's2', key: 'k' } } }],
      volumeMounts: [{ name: 'v1', mountPath: '/a' }, { name: 'v3', mountPath: '/c' }],
    };
    const spec = { containers: [c], volumes: [
      { name: 'v1', configMap: { name: 'b' } }, { name: 'v2', secret: { secretName: 'unmounted' } },
      { name: 'v3', projected: { sources: [{ secret: { name: 's3' } }, { configMap: { name: 'a' } }] } },
    ] };
    expect(referencedObjects(spec, c, { env: true, mounts: true })).toEqual({ configMaps: ['a', 'b'], secrets: ['s1', 's2', 's3'] });
    expect(referencedObjects(spec, c, { env: false, mounts: true })).toEqual({ configMaps: ['a', 'b'], secrets: ['s3'] });
  });
});
