// Nothing left behind on any failure path: every plugin, in every mode, is started with a failure
// injected at its Nth start-up step, and with a Ctrl-C delivered at its Nth step, for every N (the
// steps are counted by a first, clean run: KT_TEST_FAULT, see plugins/session/steps.ts). After each run
// the cluster (no kt-labelled object; Services and Deployments as before, ignoring status) and the
// laptop (iptables, routes, resolv.conf, hosts files, kt's local state) must be exactly as before.
// Everything runs as a user bound only to the documented Role, in a `restricted` namespace.
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deployEcho, eventually, kubectl, kubectlJson, objectsAsWritten, spawnInLaptop } from './cluster.ts';
import { laptopState } from './laptop-state.ts';
import { startPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

interface Case {
  name: string;
  plugin: string;
  args: string[];
  ready: RegExp;
}

const LAPTOP_PORT = 18680;
const stateDir = mkdtempSync(join(tmpdir(), 'kt-fault-state-'));
const hostsFile = join(mkdtempSync(join(tmpdir(), 'kt-fault-hosts-')), 'hosts');
const podenvDir = mkdtempSync(join(tmpdir(), 'kt-fault-podenv-'));
// An existing empty --mount directory: kt makes it 0700 while it runs, and must give it back empty and 0755.
const keptMountDir = join(podenvDir, 'kept');
mkdirSync(keptMountDir);
chmodSync(keptMountDir, 0o755);

const cases: Case[] = [
  { name: 'connect socks', plugin: 'kt-connect', args: ['--mode', 'socks', '--proxy-port', '2491'], ready: /Press Ctrl-C to disconnect/ },
  { name: 'connect hosts', plugin: 'kt-connect', args: ['--mode', 'hosts', '--proxy-port', '2492', '--hosts-file', hostsFile], ready: /Press Ctrl-C to disconnect/ },
  { name: 'connect transparent', plugin: 'kt-connect', args: ['--mode', 'transparent'], ready: /Press Ctrl-C to disconnect/ },
  { name: 'exchange selector', plugin: 'kt-exchange', args: ['echo', '--expose', `${LAPTOP_PORT}:80`, '--recover-after', '30s'], ready: /Press Ctrl-C to stop/ },
  { name: 'exchange scale', plugin: 'kt-exchange', args: ['deployment/echo', '--mode', 'scale', '--expose', `${LAPTOP_PORT}:80`, '--recover-after', '30s'], ready: /Press Ctrl-C to stop/ },
  { name: 'mesh auto', plugin: 'kt-mesh', args: ['echo', '--expose', `${LAPTOP_PORT}:80`, '--version-mark', 'fault', '--recover-after', '30s'], ready: /Press Ctrl-C to stop/ },
  { name: 'mesh manual', plugin: 'kt-mesh', args: ['echo', '--mode', 'manual', '--expose', `${LAPTOP_PORT}:80`, '--recover-after', '30s'], ready: /Press Ctrl-C to stop/ },
  { name: 'exchange with env file and mount', plugin: 'kt-exchange', args: ['echo', '--expose', `${LAPTOP_PORT}:80`, '--recover-after', '30s', '--env-file', join(podenvDir, 'echo.env'), '--mount', join(podenvDir, 'mnt')], ready: /Press Ctrl-C to stop/ },
  { name: 'connect with env from a deployment and an existing mount directory', plugin: 'kt-connect', args: ['--mode', 'socks', '--proxy-port', '2493', '--env-from', 'deployment/echo', '--env-file', join(podenvDir, 'echo.env'), '--mount', keptMountDir], ready: /Press Ctrl-C to disconnect/ },
  { name: 'preview', plugin: 'kt-preview', args: ['fault-preview', '--expose', `${LAPTOP_PORT}:80`, '--recover-after', '30s'], ready: /Press Ctrl-C to remove it/ },
];

describe('fault injection at every start-up step', () => {
  const ns = createNamespace('kt-fault', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  let kubeconfig = '';
  const laptops: ReturnType<typeof spawnInLaptop>[] = [];
  let sizes: Record<string, number> = {};

  const workloads = (): string => objectsAsWritten(ns.name, 'services,deployments');
  const ktObjects = (): string => kubectl(['get', 'pods,services,deployments,configmaps,serviceaccounts,roles,rolebindings,secrets', '-n', ns.name,
    '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim();
  const laptop = (): Promise<string> => laptopState({ files: [hostsFile], stateDir });
  let before = { workloads: '', laptop: '' };
  const expectRestored = async (what: string): Promise<void> => {
    // Owned objects go through the garbage collector, a moment after their owner.
    await eventually(`${what}: no kt object left`, 30_000, () => {
      const left = ktObjects();
      if (left === '') return true;
      throw new Error(`left: ${left.replaceAll('\n', ', ')}`);
    });
    await eventually(`${what}: Services and Deployments as before`, 30_000, () => (workloads() === before.workloads ? true : undefined));
    await eventually(`${what}: the real pods are back`, 90_000, () => {
      const d = kubectlJson<{ status?: { readyReplicas?: number } }>(['get', 'deployment/echo', '-n', ns.name]);
      return d.status?.readyReplicas === 1 ? true : undefined;
    });
    expect(await laptop(), `${what}: the laptop as before`).toBe(before.laptop);
    expect(existsSync(join(podenvDir, 'echo.env')) || existsSync(join(podenvDir, 'mnt')), `${what}: no env file, no mount directory`).toBe(false);
    expect([readdirSync(keptMountDir), (statSync(keptMountDir).mode & 0o7777).toString(8)], `${what}: the existing mount directory empty, with its mode`).toEqual([[], '755']);
  };

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    kubeconfig = restrictedKubeconfig(ns.name);
    writeFileSync(hostsFile, '127.0.0.1\tlocalhost\n');
    laptops.push(spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
      ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: String(LAPTOP_PORT), ECHO_GRPC_PORT: String(LAPTOP_PORT + 1), ECHO_TCP_PORT: String(LAPTOP_PORT + 2), POD_NAME: 'laptop',
    }));
    before = { workloads: workloads(), laptop: await laptop() };
  });
  afterAll(() => {
    for (const l of laptops) l.kill('SIGTERM');
    ns.remove();
    // The matrix size, for the record.
    process.stderr.write(`fault matrix: ${JSON.stringify(sizes)}\n`);
  });

  const run = (c: Case, fault: string): ReturnType<typeof startPlugin> =>
    startPlugin(c.plugin, [...c.args, '--kubeconfig', kubeconfig], { KT_STATE_DIR: stateDir, KT_TEST_FAULT: fault });

  describe.each(cases)('$name', (c) => {
    it('undoes everything when any step fails or is interrupted', async () => {
      // A clean run counts the steps and must itself leave nothing.
      const trace = run(c, 'trace');
      await trace.waitFor(c.ready, 180_000);
      const steps = [...trace.output().matchAll(/^kt-step (\d+): /gm)].length;
      expect(steps, trace.output()).toBeGreaterThan(0);
      expect(await trace.stop('SIGINT')).toBe(0);
      await expectRestored(`${c.name}, clean run`);
      sizes = { ...sizes, [c.name]: steps };

      for (let n = 1; n <= steps; n++) {
        for (const kind of ['fail', 'interrupt'] as const) {
          const p = run(c, `${kind}:${n}`);
          const code = await p.exited;
          const out = p.output();
          expect(code, `${c.name} ${kind}:${n}\n${out}`).toBe(kind === 'fail' ? 1 : 130);
          expect(out).toMatch(kind === 'fail' ? new RegExp(`injected failure at step ${n} `) : /interrupted \(SIGINT\)/);
          await expectRestored(`${c.name} ${kind}:${n}`);
        }
      }
    });
  });
});
