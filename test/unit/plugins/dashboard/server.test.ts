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
});
