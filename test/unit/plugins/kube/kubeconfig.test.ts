import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { kubeconfigFiles, loadKube } from '../../../../plugins/kube/kubeconfig.ts';

function file(dir: string, name: string, body: string): string {
  const f = join(dir, name);
  writeFileSync(f, body);
  return f;
}

const cfg = (o: { cluster: string; server: string; user: string; ctx: string; ns?: string; current?: string; ca?: string }): string => `
apiVersion: v1
kind: Config
clusters:
- name: ${o.cluster}
  cluster: { server: ${o.server}${o.ca ? `, certificate-authority: ${o.ca}` : ''} }
users:
- name: ${o.user}
  user: { token: t-${o.user} }
contexts:
- name: ${o.ctx}
  context: { cluster: ${o.cluster}, user: ${o.user}${o.ns ? `, namespace: ${o.ns}` : ''} }
${o.current ? `current-context: ${o.current}` : ''}
`;

describe('kubeconfig like kubectl', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-kc-'));
  const a = file(dir, 'a', cfg({ cluster: 'shared', server: 'https://first:6443', user: 'u1', ctx: 'one', ns: 'team-a', current: 'one', ca: 'ca.crt' }));
  const b = file(dir, 'b', cfg({ cluster: 'shared', server: 'https://second:6443', user: 'u2', ctx: 'two', current: 'two' }));

  it('reads KUBECONFIG in order, --kubeconfig alone when given, else ~/.kube/config', () => {
    expect(kubeconfigFiles(undefined, { KUBECONFIG: `${a}:${b}` })).toEqual([a, b]);
    expect(kubeconfigFiles(a, { KUBECONFIG: b })).toEqual([a]);
    expect(kubeconfigFiles(undefined, {})[0]).toMatch(/\.kube\/config$/);
  });

  it('merges first-wins: a cluster defined twice keeps its first definition; the first current-context wins', () => {
    const k = loadKube({}, { KUBECONFIG: `${a}:${b}` });
    expect(k.context).toBe('one');
    expect(k.server).toBe('https://first:6443');
    expect(k.namespace).toBe('team-a');
    const two = loadKube({ context: 'two' }, { KUBECONFIG: `${a}:${b}` });
    expect(two.server).toBe('https://first:6443');
    expect(two.namespace).toBe('default');
  });

  it('resolves relative file references against the file that names them', () => {
    const k = loadKube({}, { KUBECONFIG: a });
    expect(k.kc.getCurrentCluster()?.caFile).toBe(join(dir, 'ca.crt'));
  });

  it('-n beats the context namespace; unknown contexts and files are one clear sentence', () => {
    expect(loadKube({ namespace: 'x' }, { KUBECONFIG: a }).namespace).toBe('x');
    expect(() => loadKube({ context: 'nope' }, { KUBECONFIG: a })).toThrow('context "nope" is not in the kubeconfig (it has: one).');
    expect(() => loadKube({ kubeconfig: join(dir, 'missing') })).toThrow(/does not exist/);
    expect(() => loadKube({}, { KUBECONFIG: join(dir, 'missing') })).toThrow(/no kubeconfig found/);
  });
});
