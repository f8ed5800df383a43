// Hosts mode for a namespace-scoped user: bound to the documented Role in two namespaces, it gets
// names for the Services of both (`svc.otherns` resolves, as it does for an admin), and one line
// names the namespace it could not read. The names go to a temporary hosts file, so the laptop's
// own /etc/hosts is never touched while other tests run.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deployEcho, kubectl, runInLaptop } from './cluster.ts';
import { startPlugin } from './plugin.ts';
import { bindRoleIn, restrictedKubeconfig } from './rbac.ts';

const ORIGINAL = '127.0.0.1\tlocalhost\n# kept byte for byte\n';

/** The loopback address the hosts file gives `name`, if any. */
function addressOf(hostsFile: string, name: string): string | undefined {
  for (const line of readFileSync(hostsFile, 'utf8').split('\n')) {
    const [ip, ...names] = line.trim().split(/\s+/);
    if (ip && names.includes(name)) return ip;
  }
  return undefined;
}

/** GET http://name/path from the laptop, with `name` resolved as the hosts file says. */
async function curlByName(hostsFile: string, name: string, path: string): Promise<{ code: number; pod?: string; path?: string; stderr: string }> {
  const ip = addressOf(hostsFile, name);
  if (!ip) return { code: -1, stderr: `${name} is not in ${hostsFile}` };
  const r = await runInLaptop('curl', ['-sS', '-m', '5', '--resolve', `${name}:80:${ip}`, `http://${name}${path}`]);
  if (r.code !== 0) return { code: r.code, stderr: r.stderr };
  const j = JSON.parse(r.stdout) as { pod: string; path: string };
  return { code: 0, pod: j.pod, path: j.path, stderr: '' };
}

describe('kt-connect --mode hosts as a namespace-scoped user', () => {
  const home = createNamespace('kt-hosts-a');
  const other = createNamespace('kt-hosts-b');
  const closed = createNamespace('kt-hosts-c');
  let kubeconfig = '';
  const dir = mkdtempSync(join(tmpdir(), 'kt-hosts-'));

  beforeAll(() => {
    deployEcho('echo', home.name);
    deployEcho('web', other.name);
    kubeconfig = restrictedKubeconfig(home.name, undefined, 'kt-hosts');
    // The same user, bound to the documented Role in a second namespace too.
    bindRoleIn(other.name, home.name, 'kt-hosts');
  });
  afterAll(() => {
    kubectl(['delete', 'clusterrolebinding', `kt-hosts-${home.name}`, '--ignore-not-found']);
    kubectl(['delete', 'clusterrole', `kt-hosts-${home.name}`, '--ignore-not-found']);
    home.remove();
    other.remove();
    closed.remove();
  });

  async function session(name: string, args: string[], port: number): Promise<{ hostsFile: string; output: string; stop: () => Promise<number | null> }> {
    const hostsFile = join(dir, name);
    writeFileSync(hostsFile, ORIGINAL);
    const p = startPlugin('kt-connect', ['--mode', 'hosts', '--hosts-file', hostsFile, '--proxy-port', String(port), '--kubeconfig', kubeconfig, ...args]);
    try {
      await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
    } catch (e) {
      await p.stop('SIGINT');
      throw e;
    }
    return { hostsFile, output: p.output(), stop: () => p.stop('SIGINT') };
  }

  it('with --namespaces: the other namespace\'s Services resolve, the unreadable one is named in one line', async () => {
    const s = await session('with-flag', ['--namespaces', `${other.name},${closed.name}`], 2361);
    try {
      const warnings = s.output.split('\n').filter((l) => l.startsWith('warning:'));
      expect(warnings).toEqual([`warning: hosts mode: cannot list the Services of namespace ${closed.name} (forbidden); names in it do not resolve here`]);
      expect(s.output).toContain(`Services of namespaces ${home.name}, ${other.name} have a loopback address`);
      for (const [name, path] of [['echo', '/a'], [`echo.${home.name}`, '/b'], [`web.${other.name}`, '/c'], [`web.${other.name}.svc.cluster.local`, '/d']] as const) {
        const r = await curlByName(s.hostsFile, name, path);
        expect(r.code, `${name}: ${r.stderr}`).toBe(0);
        expect(r.path).toBe(path);
      }
      // Bare names are the session namespace's only.
      expect(addressOf(s.hostsFile, 'web')).toBeUndefined();
    } finally {
      expect(await s.stop()).toBe(0);
    }
    expect(readFileSync(s.hostsFile, 'utf8')).toBe(ORIGINAL);
  });

  it('without the flag, a user who may list namespaces gets every namespace it may read', async () => {
    kubectl(['create', 'clusterrole', `kt-hosts-${home.name}`, '--verb=list', '--resource=namespaces']);
    kubectl(['create', 'clusterrolebinding', `kt-hosts-${home.name}`, `--clusterrole=kt-hosts-${home.name}`, `--serviceaccount=${home.name}:kt-hosts`]);
    const s = await session('listed', [], 2362);
    try {
      const r = await curlByName(s.hostsFile, `web.${other.name}`, '/f');
      expect(r.code, r.stderr).toBe(0);
      const warnings = s.output.split('\n').filter((l) => l.startsWith('warning:'));
      expect(warnings).toHaveLength(1);
      expect(warnings[0]).toMatch(/^warning: hosts mode: cannot list the Services of \d+ namespaces .*; names in them do not resolve here$/);
    } finally {
      expect(await s.stop()).toBe(0);
    }
    expect(readFileSync(s.hostsFile, 'utf8')).toBe(ORIGINAL);
  });
});
