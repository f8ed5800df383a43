// The released plugins, installed the way users install them: the linux-amd64 release is built
// (or reused from dist/ when up to date), its krew manifests validated, kt-connect and kt-status
// installed with krew into a temporary KREW_ROOT, and the standalone kt-connect binary run for real
// from the laptop namespace against the local cluster, with no Node and no source tree involved.
import { execFileSync, spawnSync, spawn, type ChildProcess } from 'node:child_process';
import { existsSync, lstatSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cluster, createNamespace, deployEcho, eventually, kubectl, runInLaptop } from './cluster.ts';
import { pluginPid } from './plugin.ts';

const PROXY_PORT = 2501;
const VALIDATE_PORT = 2502;
const version = (JSON.parse(readFileSync('package.json', 'utf8')) as { version: string }).version;
const dist = resolve('dist');
const archive = (plugin: string): string => join(dist, `${plugin}-v${version}-linux-amd64.tar.gz`);
const manifest = (plugin: string): string => join(dist, 'krew-manifests', `${plugin}.yaml`);

describe('krew install of the released binaries', () => {
  const krewRoot = mkdtempSync(join(tmpdir(), 'kt-krew-'));
  const stateDir = join(krewRoot, 'kt-state');
  const ns = createNamespace('kt-krew', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  // Only the krew-installed plugins and the cluster's kubectl: nothing from plugins/bin.
  const env: NodeJS.ProcessEnv = {
    PATH: `${krewRoot}/bin:${cluster.binDir}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin`,
    HOME: homedir(),
    KREW_ROOT: krewRoot,
    KUBECONFIG: cluster.laptopKubeconfig,
    KT_STATE_DIR: stateDir,
    KT_CONFIG: '',
  };
  let proc: ChildProcess | undefined;
  let out = '';
  let exited: Promise<number | null> = Promise.resolve(null);

  beforeAll(() => {
    // Reuses dist/ when it holds an up-to-date release with linux-amd64 in it.
    execFileSync(resolve('node_modules/.bin/node'), ['plugins/release/build.ts', '--platforms', 'linux-amd64', '--validate-port', String(VALIDATE_PORT)], {
      stdio: ['ignore', 'inherit', 'inherit'],
      timeout: 600_000,
    });
    deployEcho('echo', ns.name);
  }, 900_000);

  afterAll(async () => {
    if (proc && proc.exitCode === null) {
      proc.kill('SIGKILL');
      await exited;
    }
    ns.remove();
    rmSync(krewRoot, { recursive: true, force: true });
  });

  it('every generated manifest passes validate-krew-manifest and names its archive by its real sha256', () => {
    const manifests = readdirSync(join(dist, 'krew-manifests')).filter((f) => f.endsWith('.yaml'));
    // One per plugin entry (plugins/cmd/kt-*.ts).
    expect(manifests.sort()).toEqual(readdirSync('plugins/cmd').filter((f) => /^kt-.*\.ts$/.test(f)).map((f) => f.replace(/\.ts$/, '.yaml')).sort());
    for (const m of manifests) {
      // Throws, with krew's message, on a manifest it refuses.
      execFileSync(join(cluster.binDir, 'validate-krew-manifest'), ['-manifest', join(dist, 'krew-manifests', m), '-skip-install'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
      const plugin = m.replace('.yaml', '');
      const sum = readFileSync(`${archive(plugin)}.sha256`, 'utf8').split(' ')[0]!;
      expect(execFileSync('sha256sum', [archive(plugin)], { encoding: 'utf8' }).split(' ')[0]).toBe(sum);
      expect(readFileSync(join(dist, 'krew-manifests', m), 'utf8')).toContain(`sha256: "${sum}"`);
    }
  });

  it('krew installs kt-connect and kt-status from the manifests and archives', () => {
    for (const plugin of ['kt-connect', 'kt-status']) {
      execFileSync(join(cluster.binDir, 'krew'), ['install', `--manifest=${manifest(plugin)}`, `--archive=${archive(plugin)}`], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
    }
    // krew's receipts (krew list needs an index, which an offline KREW_ROOT has not).
    expect(readdirSync(join(krewRoot, 'receipts')).sort()).toEqual(['kt-connect.yaml', 'kt-status.yaml']);
    expect(readFileSync(join(krewRoot, 'receipts', 'kt-connect.yaml'), 'utf8')).toContain(`version: v${version}`);
    expect(lstatSync(join(krewRoot, 'bin', 'kubectl-kt_connect')).isSymbolicLink()).toBe(true);
    const v = execFileSync('kubectl', ['kt-connect', '--version'], { env, encoding: 'utf8' });
    expect(v).toMatch(new RegExp(`^kt-connect ${version.replaceAll('.', '\\.')}\\nshadow image: ghcr\\.io/kt-dev/kt-shadow:${version.replaceAll('.', '\\.')} \\(default\\)\\nrouter image: `));
  });

  it('the standalone binary hands its own --env-file to the plugin (Node does not take it)', () => {
    const r = spawnSync('kubectl', ['kt-connect', '--mode', 'socks', '--env-file', join(krewRoot, 'no-such-dir', 'env')], { env, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(2);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/^kt-connect: .*--env-file/);
  });

  it('kubectl completes the krew-installed plugin through the linked helper, with the cluster\'s namespaces', () => {
    symlinkSync('kubectl-kt_connect', join(krewRoot, 'bin', 'kubectl_complete-kt_connect'));
    const modes = execFileSync('kubectl', ['__complete', 'kt-connect', '--mode', ''], { env, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(modes).toBe('socks\ntransparent\nhosts\n:4\n');
    const nss = execFileSync('kubectl', ['__complete', 'kt-connect', '-n', 'kt-krew'], { env: { ...env, KUBECONFIG: cluster.kubeconfig }, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] });
    expect(nss.split('\n')).toContain(ns.name);
  });

  it('the krew-installed kubectl kt-connect connects from the laptop; curl reaches the echo Service through it', async () => {
    proc = spawn('ip', ['netns', 'exec', cluster.laptopNs, 'kubectl', 'kt-connect', '--mode', 'socks', '--proxy-port', String(PROXY_PORT), '-n', ns.name], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    const p = proc;
    exited = new Promise((r) => p.on('exit', (code) => r(code)));
    p.stdout!.on('data', (d: Buffer) => { out += d.toString(); });
    p.stderr!.on('data', (d: Buffer) => { out += d.toString(); });
    await eventually('the banner', 120_000, () => {
      if (p.exitCode !== null) throw new Error(`kt-connect exited ${p.exitCode}:\n${out}`);
      return /Press Ctrl-C to disconnect/.test(out) ? true : undefined;
    });
    expect(out).toContain(`connected to namespace "${ns.name}"`);
    expect(out).not.toMatch(/single.executable|ExperimentalWarning|Warning:/i);
    const r = await runInLaptop('curl', ['-sS', '-m', '10', '--proxy', `socks5h://127.0.0.1:${PROXY_PORT}`, `http://echo.${ns.name}/krew`]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { path: string }).path).toBe('/krew');
  });

  it('the krew-installed kubectl kt-status sees the session', async () => {
    const r = await runInLaptop('env', [...Object.entries(env).map(([k, v]) => `${k}=${v}`), 'kubectl', 'kt-status', '-n', ns.name]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/connect\s.*healthy/);
  });

  it('Ctrl-C ends the session and leaves nothing behind', async () => {
    const pid = pluginPid(proc!.pid!, (c) => c.split('\0')[0]!.endsWith('/kubectl-kt_connect'));
    expect(pid, 'the plugin process').toBeDefined();
    process.kill(pid!, 'SIGINT');
    const code = await Promise.race([exited, new Promise<string>((r) => setTimeout(() => r('timeout'), 30_000))]);
    expect(code, out).toBe(0);
    expect(out).toContain('nothing is left in the cluster');
    expect(kubectl(['get', 'pods,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
    const sessions = existsSync(stateDir) ? readdirSync(stateDir) : [];
    expect(sessions).toEqual([]);
    const after = await runInLaptop('curl', ['-sS', '-m', '3', '--proxy', `socks5h://127.0.0.1:${PROXY_PORT}`, `http://echo.${ns.name}/`]);
    expect(after.code).not.toBe(0);
  });
});
