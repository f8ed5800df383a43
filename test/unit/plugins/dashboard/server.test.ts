import { request } from 'node:http';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { startServer } from '../../../../plugins/dashboard/server.ts';
import type { Dashboard } from '../../../../plugins/dashboard/model.ts';

afterEach(() => { vi.useRealTimers(); });

describe('the dashboard server', () => {
  it('a port in use rejects and leaves no keep-alive timer behind', async () => {
    const taken = createServer();
    await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
    const port = (taken.address() as { port: number }).port;
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    try {
      await expect(startServer({
        address: '127.0.0.1', port, token: 't', hosts: undefined, scope: 'namespace a',
        current: () => ({ model: {} as Dashboard, generation: 0 }),
        clean: () => Promise.resolve({ status: 200, body: { done: [], warnings: [] } }),
      })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      expect(vi.getTimerCount()).toBe(0);
    } finally {
      taken.close();
    }
  });

  it('HEAD /events answers 200 and ends', async () => {
    const srv = await startServer({
      address: '127.0.0.1', port: 0, token: 't', hosts: undefined, scope: 'namespace a',
      current: () => ({ model: {} as Dashboard, generation: 0 }),
      clean: () => Promise.resolve({ status: 200, body: { done: [], warnings: [] } }),
    });
    try {
      const status = await new Promise<number | undefined>((resolve, reject) => {
        const req = request({ host: '127.0.0.1', port: srv.port, method: 'HEAD', path: '/events?token=t' }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode));
        });
        req.setTimeout(2000, () => req.destroy(new Error('HEAD /events did not end')));
        req.on('error', reject);
        req.end();
      });
      expect(status).toBe(200);
    } finally {
      await srv.close();
    }
  });
});
