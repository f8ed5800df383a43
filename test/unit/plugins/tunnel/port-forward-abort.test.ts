// Giving up a port-forward while it opens (the pod turned out unable to start): the caller sees
// the reason it was given up for, and nothing fails later on its own.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPortForward } from '../../../../plugins/tunnel/port-forward.ts';

describe('openPortForward with a signal', () => {
  let server: Server;
  let kc: KubeConfig;
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => { uncaught.push(e); };

  beforeAll(async () => {
    // An API server that takes the upgrade request and never answers it.
    server = createServer();
    server.on('upgrade', () => { /* silent */ });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    kc = new KubeConfig();
    kc.loadFromOptions({
      clusters: [{ name: 'c', server: `http://127.0.0.1:${port}`, skipTLSVerify: true }],
      users: [{ name: 'u' }],
      contexts: [{ name: 'x', cluster: 'c', user: 'u' }],
      currentContext: 'x',
    });
    process.on('uncaughtException', onUncaught);
  });
  afterAll(() => {
    process.off('uncaughtException', onUncaught);
    server.closeAllConnections();
    server.close();
  });

  it('rejects with the reason when aborted during the upgrade', async () => {
    const ac = new AbortController();
    const opening = openPortForward(kc, { namespace: 'ns', pod: 'p', port: 2222 }, 15_000, undefined, { signal: ac.signal });
    setTimeout(() => ac.abort(new Error('the shadow image cannot be pulled')), 50);
    await expect(opening).rejects.toThrow('the shadow image cannot be pulled');
    await new Promise((r) => setTimeout(r, 100));
    expect(uncaught).toEqual([]);
  });

  it('does not start when already aborted', async () => {
    const ac = new AbortController();
    ac.abort(new Error('gone'));
    await expect(openPortForward(kc, { namespace: 'ns', pod: 'p', port: 2222 }, 15_000, undefined, { signal: ac.signal })).rejects.toThrow('gone');
  });
});
