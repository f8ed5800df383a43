// Transparent mode next to a VPN: a fake VPN in the laptop namespace (a veth pair, as this kernel
// has no dummy interfaces, whose
// route, in a policy table of its own as WireGuard and Tailscale keep theirs, claims a /28 of the
// pod range no pod uses) keeps that /28, the cluster keeps working, and --include-cidr naming the
// /28 gives it to the cluster. A route covering a whole cluster range is refused, changing nothing.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deployEcho, kubectl, kubectlJson, runInLaptop } from './cluster.ts';
import { laptopState } from './laptop-state.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';
import { captureFromSaved } from '../../plugins/connect/transparent/transparent.ts';

interface PodList { items: { status: { podIP?: string } }[] }

const TABLE = '4242';
const dev = `ktvpn${randomBytes(2).toString('hex')}`;

async function inLaptop(cmd: string, ...args: string[]): Promise<string> {
  const r = await runInLaptop(cmd, args);
  if (r.code !== 0) throw new Error(`${cmd} ${args.join(' ')}: ${r.stderr}`);
  return r.stdout;
}

/** Only one transparent session per machine: wait while another test's session runs. */
async function startTransparent(args: string[]): Promise<RunningPlugin> {
  for (let attempt = 0; ; attempt++) {
    const p = startPlugin('kt-connect', ['--mode', 'transparent', ...args]);
    try {
      await p.waitFor(/Press Ctrl-C to disconnect/, 120_000);
      return p;
    } catch (e) {
      if (!/already running on this machine/.test(p.output()) || attempt >= 40) throw e;
      await new Promise((r) => setTimeout(r, 15_000));
    }
  }
}

describe('transparent mode next to a VPN', () => {
  const ns = createNamespace('kt-vpn');
  let podIp = '';
  let vpn = ''; // the /28 the fake VPN claims
  let vpnIp = '';
  let before = '';

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    podIp = kubectlJson<PodList>(['get', 'pods', '-n', ns.name, '-l', 'app=echo']).items[0]!.status.podIP!;
    // The highest /28 of the pod's /24 that no pod of the cluster uses now.
    const used = new Set(kubectlJson<PodList>(['get', 'pods', '-A']).items.map((p) => p.status.podIP ?? ''));
    const prefix = podIp.split('.').slice(0, 3).join('.');
    const free = [240, 224, 208, 192, 176].find((b) => ![...Array(16).keys()].some((i) => used.has(`${prefix}.${b + i}`)));
    expect(free, 'a free /28 in the pod range').toBeDefined();
    vpn = `${prefix}.${free}/28`;
    vpnIp = `${prefix}.${free! + 5}`;
    before = await laptopState();
    await inLaptop('ip', 'link', 'add', dev, 'type', 'veth', 'peer', 'name', `${dev}p`);
    await inLaptop('ip', 'link', 'set', dev, 'up');
    await inLaptop('ip', 'link', 'set', `${dev}p`, 'up');
    await inLaptop('ip', 'route', 'add', vpn, 'dev', dev, 'table', TABLE);
    await inLaptop('ip', 'rule', 'add', 'to', vpn, 'lookup', TABLE, 'priority', '4242');
  }, 180_000);

  afterAll(async () => {
    await runInLaptop('ip', ['rule', 'del', 'to', vpn, 'lookup', TABLE, 'priority', '4242']);
    await runInLaptop('ip', ['route', 'flush', 'table', TABLE]);
    await runInLaptop('ip', ['link', 'del', dev]);
    ns.remove();
  });

  it('leaves the VPN\'s part out with one line saying how to force it, and the cluster keeps working', async () => {
    const kt = await startTransparent(['-n', ns.name]);
    try {
      const lines = kt.output().split('\n').filter((l) => l.startsWith('warning:') && l.includes(vpn));
      expect(lines).toEqual([expect.stringMatching(new RegExp(
        `^warning: leaving ${vpn.replace(/\./g, '\\.')} out of 10\\.244\\.\\S+: the route ${vpn.replace(/\./g, '\\.')} dev ${dev} table ${TABLE} claims it \\(a VPN\\?\\); pass --include-cidr ${vpn.replace(/\./g, '\\.')} to send it to the cluster anyway$`))]);
      const r = await runInLaptop('curl', ['-sS', '-m', '5', `http://echo.${ns.name}/`]);
      expect(r.code, r.stderr).toBe(0);
      expect((JSON.parse(r.stdout) as { pod: string }).pod).toMatch(/^echo-/);
      const direct = await runInLaptop('curl', ['-sS', '-m', '5', `http://${podIp}:8080/`]);
      expect(direct.code, direct.stderr).toBe(0);
      const saved = await inLaptop('iptables-save', '-t', 'nat');
      expect(captureFromSaved(saved, podIp)).toBeDefined();
      expect(captureFromSaved(saved, vpnIp)).toBeUndefined();
      expect(await inLaptop('ip', 'route', 'get', vpnIp)).toContain(`dev ${dev}`);
    } finally {
      expect(await kt.stop('SIGINT')).toBe(0);
    }
    expect(await laptopState()).toBe(before);
  }, 900_000);

  it('captures the VPN\'s part when --include-cidr names it', async () => {
    const kt = await startTransparent(['-n', ns.name, '--include-cidr', vpn]);
    try {
      expect(kt.output()).toContain(`warning: capturing ${vpn} although the route ${vpn} dev ${dev} table ${TABLE} covers it (named by --include-cidr)\n`);
      expect(kt.output()).not.toContain('leaving ');
      const saved = await inLaptop('iptables-save', '-t', 'nat');
      expect(captureFromSaved(saved, vpnIp)).toBeDefined();
      expect(saved).toContain(`-d ${vpn} -p tcp -j REDIRECT`);
      expect(saved).not.toMatch(new RegExp(`-d ${vpn.replace(/\./g, '\\.')} -j RETURN`));
      const r = await runInLaptop('curl', ['-sS', '-m', '5', `http://echo.${ns.name}/`]);
      expect(r.code, r.stderr).toBe(0);
    } finally {
      expect(await kt.stop('SIGINT')).toBe(0);
    }
    expect(await laptopState()).toBe(before);
  }, 900_000);

  it('refuses a cluster range a route of another interface covers whole, naming it, and changes nothing', async () => {
    // In the fake VPN's table, which only the /28 rule looks up: no traffic changes path.
    const cover = `${podIp.split('.').slice(0, 2).join('.')}.0.0/15`;
    await inLaptop('ip', 'route', 'add', cover, 'dev', dev, 'table', TABLE);
    try {
      const pods = kubectl(['get', 'pods,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']);
      let r;
      for (let attempt = 0; ; attempt++) {
        r = await runPlugin('kt-connect', ['--mode', 'transparent', '-n', ns.name], {}, 180_000);
        if (!/already running on this machine/.test(r.stderr) || attempt >= 40) break;
        await new Promise((res) => setTimeout(res, 15_000));
      }
      expect(r.code).not.toBe(0);
      expect(r.stderr).toMatch(new RegExp(`the cluster range 10\\.244\\.\\S+ lies inside the route ${cover.replace(/\./g, '\\.')} dev ${dev} table ${TABLE} of another interface \\(a VPN\\?\\), so capturing it would take that traffic away; pass --include-cidr \\S+ to capture it anyway, or --exclude-cidr \\S+ to leave it out\\.`));
      expect(await laptopState()).toBe(before);
      expect(kubectl(['get', 'pods,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name'])).toBe(pods);
    } finally {
      await runInLaptop('ip', ['route', 'del', cover, 'dev', dev, 'table', TABLE]);
    }
  }, 900_000);
});
