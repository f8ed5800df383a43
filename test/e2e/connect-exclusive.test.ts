// A failed session never harms a healthy one: with one transparent kt-connect running, a second
// one on the same machine is refused before it creates or installs anything, names the live
// session and how to end it, and the first keeps working.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deployEcho, kubectl, runInLaptop } from './cluster.ts';
import { laptopState } from './laptop-state.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';

describe('a second transparent session on the same machine', () => {
  const ns = createNamespace('kt-excl', { 'pod-security.kubernetes.io/enforce': 'restricted' });
  const stateDir = mkdtempSync(join(tmpdir(), 'kt-excl-state-'));
  let first: RunningPlugin;
  let before = '';

  beforeAll(async () => {
    before = await laptopState();
    deployEcho('echo', ns.name);
    first = startPlugin('kt-connect', ['--mode', 'transparent', '-n', ns.name], { KT_STATE_DIR: stateDir });
    await first.waitFor(/Press Ctrl-C to disconnect/, 120_000);
  });
  afterAll(async () => {
    if (first.proc.exitCode === null) await first.stop('SIGINT');
    ns.remove();
  });

  it('is refused up front, naming the live session, and changes nothing', async () => {
    const session = /session ([0-9a-f]{10})/.exec(first.output())![1]!;
    const during = await laptopState();
    const pods = kubectl(['get', 'pods', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']);
    const r = await runPlugin('kt-connect', ['--mode', 'transparent', '-n', ns.name], { KT_STATE_DIR: stateDir });
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(new RegExp(`a transparent kt-connect session is already running on this machine \\(session ${session}, pid \\d+, namespace "${ns.name}"\\); end it with Ctrl-C`));
    expect(await laptopState()).toBe(during);
    expect(kubectl(['get', 'pods', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name'])).toBe(pods);
  });

  it('leaves the first session working, and everything restored when it ends', async () => {
    const r = await runInLaptop('curl', ['-sS', '-m', '5', `http://echo.${ns.name}/`]);
    expect(r.code, r.stderr).toBe(0);
    expect((JSON.parse(r.stdout) as { pod: string }).pod).toMatch(/^echo-/);
    expect(await first.stop('SIGINT')).toBe(0);
    expect(await laptopState()).toBe(before);
  });
});
