// kubectl's generic flags on the loaded kubeconfig: which entries they pick and override (as
// client-go's DirectClientConfig does), and what reaches an API server on loopback.
import { CoreV1Api } from '@kubernetes/client-node';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { command, parse, KUBE_FLAGS } from '../../../../plugins/cli/cli.ts';
import { applyOverrides, expandGroups, kubeOptions, loadKube } from '../../../../plugins/kube/kubeconfig.ts';

const spec = command({ name: 'kt-test', summary: '', usage: '', flags: KUBE_FLAGS, run: () => Promise.resolve(0) });
const raw = {
  clusters: [
    { name: 'prod', cluster: { server: 'https://prod:6443', 'certificate-authority-data': 'Q0E=', 'tls-server-name': 'prod.internal' } },
    { name: 'staging', cluster: { server: 'https://staging:6443', 'insecure-skip-tls-verify': true } },
  ],
  users: [
    { name: 'alice', user: { token: 'alice-token' } },
    { name: 'bob', user: { 'client-certificate-data': 'Y2VydA==', 'client-key-data': 'a2V5' } },
  ],
  contexts: [
    { name: 'p', context: { cluster: 'prod', user: 'alice', namespace: 'team' } },
    { name: 's', context: { cluster: 'staging', user: 'bob' } },
  ],
  'current-context': 'p',
};
type Entry = Record<string, unknown>;
const entry = (r: ReturnType<typeof applyOverrides>, list: 'clusters' | 'users', key: 'cluster' | 'user'): Entry => {
  const ctx = r.contexts!.find((c) => c.name === r['current-context'])!.context as Entry;
  return r[list]!.find((x) => x.name === ctx[key])![key] as Entry;
};

describe('flags to kubeconfig, as kubectl maps them', () => {
  it('reads every generic flag', () => {
    const o = kubeOptions(parse(spec, ['--as', 'system:serviceaccount:ns:sa', '--as-group', 'g1', '--as-group', 'g2', '--as-uid', 'u-1',
      '--token', 'tok', '-s', 'https://x:1', '--certificate-authority', 'ca.pem', '--client-certificate', 'c.pem', '--client-key', 'k.pem',
      '--insecure-skip-tls-verify', '--tls-server-name', 'api', '--cluster', 'c', '--user', 'u', '--request-timeout', '2m', '-v', '6']));
    expect(o).toMatchObject({
      as: 'system:serviceaccount:ns:sa', asGroups: ['g1', 'g2'], asUid: 'u-1', token: 'tok', server: 'https://x:1',
      certificateAuthority: 'ca.pem', clientCertificate: 'c.pem', clientKey: 'k.pem', insecureSkipTlsVerify: true,
      tlsServerName: 'api', cluster: 'c', user: 'u', requestTimeoutMs: 120_000, verbosity: 6,
    });
    expect(parse(spec, ['-v', '4']).debug).toBe(true);
    expect(parse(spec, ['--v=3']).debug).toBe(false);
    expect(() => parse(spec, ['-v', 'x'])).toThrow(/-v takes a log level/);
  });

  it('takes --request-timeout in kubectl forms', () => {
    const ms = (t: string): number | undefined => kubeOptions(parse(spec, ['--request-timeout', t])).requestTimeoutMs;
    expect(ms('0')).toBe(0);
    expect(ms('5')).toBe(5000);
    expect(ms('1s')).toBe(1000);
    expect(ms('2m')).toBe(120_000);
    expect(ms('1m30s')).toBe(90_000);
    expect(ms('1ms')).toBe(1);
    expect(kubeOptions(parse(spec, [])).requestTimeoutMs).toBe(0);
    expect(() => ms('5x')).toThrow('--request-timeout "5x" is not a duration; use e.g. 90s, 5m or 1h.');
    expect(() => kubeOptions(parse(spec, ['--request-timeout=-1s']))).toThrow(/is not a duration/);
  });

  it('picks the context, then --cluster and --user entries for it', () => {
    const r = applyOverrides(raw, { context: 's', cluster: 'prod', user: 'alice' });
    expect(r['current-context']).toBe('s');
    expect(entry(r, 'clusters', 'cluster').server).toBe('https://prod:6443');
    expect(entry(r, 'users', 'user').token).toBe('alice-token');
    expect(() => applyOverrides(raw, { cluster: 'nope' })).toThrow('cluster "nope" is not in the kubeconfig (it has: prod, staging).');
    expect(() => applyOverrides(raw, { user: 'carol' })).toThrow('user "carol" is not in the kubeconfig (it has: alice, bob).');
    expect(() => applyOverrides(raw, { context: 'x' })).toThrow('context "x" is not in the kubeconfig (it has: p, s).');
  });

  it('overrides the cluster: a CA or insecure flag replaces both, --server drops tls-server-name', () => {
    const ca = entry(applyOverrides(raw, { certificateAuthority: 'my-ca.pem' }, '/work'), 'clusters', 'cluster');
    expect(ca).toMatchObject({ 'certificate-authority': '/work/my-ca.pem', 'insecure-skip-tls-verify': false, 'tls-server-name': 'prod.internal' });
    expect(ca['certificate-authority-data']).toBeUndefined();
    const insecure = entry(applyOverrides(raw, { insecureSkipTlsVerify: true }), 'clusters', 'cluster');
    expect(insecure['insecure-skip-tls-verify']).toBe(true);
    expect(insecure['certificate-authority-data']).toBeUndefined();
    const server = entry(applyOverrides(raw, { server: 'https://other:6443' }), 'clusters', 'cluster');
    expect(server.server).toBe('https://other:6443');
    expect(server['tls-server-name']).toBeUndefined();
    expect(server['certificate-authority-data']).toBe('Q0E=');
    expect(entry(applyOverrides(raw, { tlsServerName: 'api.local' }), 'clusters', 'cluster')['tls-server-name']).toBe('api.local');
    // Only the context in use changes; other contexts keep their entries.
    expect(applyOverrides(raw, { server: 'https://other:6443' }).clusters!.find((c) => c.name === 'staging')).toEqual(raw.clusters[1]);
  });

  it('overrides the user: token, client certificate, impersonation', () => {
    const u = entry(applyOverrides(raw, { token: 't2', as: 'jane', asGroups: ['a', 'b'], asUid: 'id', clientCertificate: 'c.pem', clientKey: 'k.pem' }, '/w'), 'users', 'user');
    expect(u).toMatchObject({ token: 't2', as: 'jane', 'as-groups': ['a', 'b'], 'as-uid': 'id', 'client-certificate': '/w/c.pem', 'client-key': '/w/k.pem' });
    expect(() => applyOverrides(raw, { context: 's', clientCertificate: 'c.pem' })).toThrow(/embeds client-certificate-data/);
    expect(() => applyOverrides(raw, { asGroups: ['a'] })).toThrow('--as-group and --as-uid need --as (the user to impersonate).');
  });

  it('sends each impersonated group as a header line of its own', () => {
    expect(expandGroups({ authorization: 'Bearer x', 'x-kt-impersonate-groups': '["a","b, c"]' })).toEqual({ authorization: 'Bearer x', 'impersonate-group': ['a', 'b, c'] });
    expect(expandGroups({ accept: 'json' })).toEqual({ accept: 'json' });
  });
});

describe('what an API server sees', () => {
  let server: Server;
  let url = '';
  const seen: { headers: IncomingHttpHeaders; raw: string[] }[] = [];
  let delayMs = 0;
  beforeAll(async () => {
    server = createServer((req, res) => {
      seen.push({ headers: req.headers, raw: req.rawHeaders });
      setTimeout(() => { res.setHeader('content-type', 'application/json'); res.end('{"kind":"PodList","apiVersion":"v1","items":[]}'); }, delayMs);
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(() => { server.closeAllConnections(); server.close(); });

  const kubeconfig = (): string => {
    const f = join(mkdtempSync(join(tmpdir(), 'kt-flags-')), 'config');
    writeFileSync(f, `apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://unused:1"}}]
users: [{name: u, user: {token: from-file}}]
contexts: [{name: x, context: {cluster: c, user: u, namespace: ns}}]
current-context: x
`);
    return f;
  };

  it('impersonation, token and server reach the API server on API calls', async () => {
    const k = loadKube(kubeOptions(parse(spec, ['--kubeconfig', kubeconfig(), '-s', url, '--insecure-skip-tls-verify', '--token', 'flag-token',
      '--as', 'system:serviceaccount:ns:dev', '--as-group', 'g1', '--as-group', 'g2, with comma', '--as-uid', 'uid-7'])));
    seen.length = 0;
    await k.kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'ns' });
    const { headers, raw: lines } = seen[0]!;
    expect(headers.authorization).toBe('Bearer flag-token');
    expect(headers['impersonate-user']).toBe('system:serviceaccount:ns:dev');
    expect(headers['impersonate-uid']).toBe('uid-7');
    const groups = lines.filter((_, i) => i % 2 === 1 && lines[i - 1]!.toLowerCase() === 'impersonate-group');
    expect(groups).toEqual(['g1', 'g2, with comma']);
    expect(headers['x-kt-impersonate-groups']).toBeUndefined();
  });

  it('the port-forward WebSocket gets the same identity', async () => {
    const k = loadKube(kubeOptions(parse(spec, ['--kubeconfig', kubeconfig(), '-s', url, '--insecure-skip-tls-verify', '--token', 'flag-token', '--as', 'jane', '--as-group', 'g1', '--as-group', 'g2', '--as-uid', 'u'])));
    const opts: { headers?: Record<string, string | string[]> } = {};
    await k.kc.applyToHTTPSOptions(opts);
    expect(opts.headers).toMatchObject({ Authorization: 'Bearer flag-token', 'Impersonate-User': 'jane', 'Impersonate-Group': ['g1', 'g2'], 'Impersonate-Uid': 'u' });
  });

  it('--request-timeout limits each API call, in one sentence', async () => {
    const k = loadKube(kubeOptions(parse(spec, ['--kubeconfig', kubeconfig(), '-s', url, '--insecure-skip-tls-verify', '--request-timeout', '50ms'])));
    delayMs = 500;
    const t0 = Date.now();
    await expect(k.kc.makeApiClient(CoreV1Api).listNamespacedPod({ namespace: 'ns' })).rejects.toThrow(`the API server ${url} did not answer within --request-timeout; give it longer (e.g. --request-timeout 30s) or leave the flag out.`);
    expect(Date.now() - t0).toBeLessThan(400);
    delayMs = 0;
  });
});
