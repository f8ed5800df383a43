// `kubectl kt-connect -- <command>`: one command runs with the proxy settings, kt-connect exits
// with the command's exit code and leaves nothing behind.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createNamespace, deployEcho, kubectl } from './cluster.ts';
import { runPlugin } from './plugin.ts';

describe('kt-connect -- command', () => {
  const ns = createNamespace('kt-run');
  beforeAll(() => deployEcho('echo', ns.name));
  afterAll(() => ns.remove());

  it('runs the command through the cluster and passes its exit code on', async () => {
    const ok = await runPlugin('kt-connect', ['--mode', 'socks', '--proxy-port', '2331', '-n', ns.name, '--', 'sh', '-c', 'curl -sS -m 5 http://echo/run; echo; exit 7'], {}, 120_000);
    expect(ok.code).toBe(7);
    expect(ok.stdout).toMatch(/"pod":"echo-/);
    expect(kubectl(['get', 'pods,secrets', '-n', ns.name, '-l', 'app.kubernetes.io/managed-by=kt', '-o', 'name']).trim()).toBe('');
  });
});
