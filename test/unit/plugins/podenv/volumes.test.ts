import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { V1ConfigMap, V1Container, V1Pod, V1Secret, V1Volume } from '@kubernetes/client-node';
import { planMounts, underDir, type MountPlan } from '../../../../plugins/podenv/volumes.ts';
import { listFiles, writePlan } from '../../../../plugins/podenv/mount-writer.ts';

const b64 = (s: string): string => Buffer.from(s).toString('base64');
const cm: V1ConfigMap = { metadata: { name: 'cfg' }, data: { 'config.yaml': 'a: 1\n', 'other.txt': 'o' }, binaryData: { 'logo.bin': b64('\x00\x01') } };
const sec: V1Secret = { metadata: { name: 'creds' }, data: { password: b64('pw'), 'tls.key': b64('KEY') } };

function plan(volumes: V1Volume[], mounts: V1Container['volumeMounts'], env: Record<string, string> = {}): MountPlan {
  const container: V1Container = { name: 'app', volumeMounts: mounts, resources: { limits: { memory: '64Mi' } } };
  const pod: V1Pod = { metadata: { name: 'p', namespace: 'dev', labels: { app: 'x', b: '2' } }, spec: { containers: [container], volumes } };
  return planMounts({ pod, container, configMaps: new Map([['cfg', cm]]), secrets: new Map([['creds', sec]]), env });
}
const view = (p: MountPlan): Record<string, string> => Object.fromEntries(p.files.map((f) => [f.path, `${f.mode.toString(8)} ${f.content.toString('latin1')}`]));

describe('planMounts', () => {
  it('brings ConfigMap (binaryData too), Secret and downwardAPI volumes at their mount paths, 0644 unless said', () => {
    const p = plan([
      { name: 'c', configMap: { name: 'cfg' } },
      { name: 's', secret: { secretName: 'creds', defaultMode: 0o400 } },
      { name: 'd', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }, { path: 'mem', resourceFieldRef: { containerName: 'app', resource: 'limits.memory', divisor: '1Mi' }, mode: 0o600 }] } },
    ], [{ name: 'c', mountPath: '/etc/app' }, { name: 's', mountPath: '/var/run/secrets/app/' }, { name: 'd', mountPath: '/etc/podinfo' }]);
    expect(p.problems).toEqual([]);
    expect(view(p)).toEqual({
      'etc/app/config.yaml': '644 a: 1\n', 'etc/app/other.txt': '644 o', 'etc/app/logo.bin': '644 \x00\x01',
      'var/run/secrets/app/password': '400 pw', 'var/run/secrets/app/tls.key': '400 KEY',
      'etc/podinfo/labels': '644 app="x"\nb="2"', 'etc/podinfo/mem': '600 64',
    });
  });

  it('honours items (rename, per-item mode), subPath and subPathExpr', () => {
    const p = plan([
      { name: 'c', configMap: { name: 'cfg', items: [{ key: 'config.yaml', path: 'conf/app.yaml', mode: 0o440 }] } },
      { name: 's', secret: { secretName: 'creds' } },
    ], [
      { name: 'c', mountPath: '/etc/app' },
      { name: 's', mountPath: '/etc/tls.key', subPath: 'tls.key' },
      { name: 'c', mountPath: '/etc/conf-dir', subPathExpr: '$(SUB)' },
    ], { SUB: 'conf' });
    expect(view(p)).toEqual({ 'etc/app/conf/app.yaml': '440 a: 1\n', 'etc/tls.key': '644 KEY', 'etc/conf-dir/app.yaml': '440 a: 1\n' });
  });

  it('projected volumes: ConfigMap, Secret and downwardAPI sources; the token is named as not brought', () => {
    const p = plan([{ name: 'kube-api-access-x', projected: { defaultMode: 0o444, sources: [
      { serviceAccountToken: { path: 'token' } }, { configMap: { name: 'cfg', items: [{ key: 'other.txt', path: 'ca.crt' }] } },
      { downwardAPI: { items: [{ path: 'namespace', fieldRef: { fieldPath: 'metadata.namespace' } }] } }, { secret: { name: 'creds', items: [{ key: 'password', path: 'pw' }] } },
    ] } }], [{ name: 'kube-api-access-x', mountPath: '/var/run/secrets/kubernetes.io/serviceaccount' }]);
    expect(view(p)).toEqual({
      'var/run/secrets/kubernetes.io/serviceaccount/ca.crt': '444 o', 'var/run/secrets/kubernetes.io/serviceaccount/namespace': '444 dev',
      'var/run/secrets/kubernetes.io/serviceaccount/pw': '444 pw',
    });
    expect(p.skipped).toEqual([{ volume: 'kube-api-access-x', why: 'its service account token (token) is issued to the pod only; the rest of the volume is brought' }]);
  });

  it('names each volume it cannot bring once, with why; missing objects are problems unless optional', () => {
    const p = plan([
      { name: 'scratch', emptyDir: {} }, { name: 'data', persistentVolumeClaim: { claimName: 'db' } }, { name: 'host', hostPath: { path: '/var/log' } },
      { name: 'gone', configMap: { name: 'nope' } }, { name: 'maybe', secret: { secretName: 'nope', optional: true } },
      { name: 'key', configMap: { name: 'cfg', items: [{ key: 'missing', path: 'm' }] } },
    ], [
      { name: 'scratch', mountPath: '/tmp' }, { name: 'scratch', mountPath: '/cache' }, { name: 'data', mountPath: '/data' }, { name: 'host', mountPath: '/logs' },
      { name: 'gone', mountPath: '/g' }, { name: 'maybe', mountPath: '/m' }, { name: 'key', mountPath: '/k' },
    ]);
    expect(p.skipped.map((s) => s.volume)).toEqual(['scratch', 'data', 'host']);
    expect(p.skipped[1]!.why).toContain('persistentVolumeClaim db');
    expect(p.problems).toEqual(['configmap/nope (volume gone) does not exist in namespace "dev"', 'configmap/cfg has no key "missing"']);
    expect(p.dirs).toContain('m');
  });

  it('never places anything outside the directory', () => {
    expect(underDir('/../../etc/passwd')).toBe('etc/passwd');
    expect(underDir('a/../../b')).toBe('b');
    const p = plan([{ name: 'c', configMap: { name: 'cfg' } }], [{ name: 'c', mountPath: '/x', subPath: '../..' }]);
    expect(p.files.every((f) => !f.path.includes('..'))).toBe(true);
  });
});

describe('writePlan', () => {
  const dirs: string[] = [];
  afterEach(() => { for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true }); });

  it('writes files with their modes in a 0700 directory, replaces changed ones and removes dropped ones', () => {
    const dir = join(mkdtempSync(join(tmpdir(), 'kt-mount-')), 'm');
    dirs.push(dirname(dir));
    const first = plan([{ name: 'c', configMap: { name: 'cfg' } }, { name: 's', secret: { secretName: 'creds', defaultMode: 0o400 } }], [{ name: 'c', mountPath: '/etc/app' }, { name: 's', mountPath: '/etc/s' }]);
    expect(writePlan(dir, first).written).toHaveLength(5);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
    expect(statSync(join(dir, 'etc/s/password')).mode & 0o777).toBe(0o400);
    expect(writePlan(dir, first)).toEqual({ written: [], removed: [] });
    const second: MountPlan = { ...first, files: first.files.filter((f) => !f.path.startsWith('etc/s/')).map((f) => (f.path === 'etc/app/config.yaml' ? { ...f, content: Buffer.from('a: 2\n') } : f)) };
    expect(writePlan(dir, second)).toEqual({ written: ['etc/app/config.yaml'], removed: ['etc/s/password', 'etc/s/tls.key'] });
    expect(readFileSync(join(dir, 'etc/app/config.yaml'), 'utf8')).toBe('a: 2\n');
    expect(listFiles(dir).sort()).toEqual(['etc/app/config.yaml', 'etc/app/logo.bin', 'etc/app/other.txt']);
  });
});

function dirname(p: string): string { return p.slice(0, p.lastIndexOf('/')); }
