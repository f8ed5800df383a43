import { describe, expect, it, vi } from 'vitest';
import type { Kube } from '../../../../plugins/kube/kube.ts';
import type { Logger } from '../../../../plugins/cli/log.ts';

/** Every watch started, with its controller and the callback that ends it. */
const started: { controller: AbortController; end: (err: unknown) => void }[] = [];

vi.mock('@kubernetes/client-node', async (importOriginal) => ({
  ...await importOriginal<typeof import('@kubernetes/client-node')>(),
  Watch: class {
    watch(_path: string, _q: unknown, _cb: unknown, done: (err: unknown) => void): Promise<AbortController> {
      const controller = new AbortController();
      started.push({ controller, end: done });
      return Promise.resolve(controller);
    }
  },
}));

const { watchObjects } = await import('../../../../plugins/podenv/watch.ts');

const tick = (ms = 20): Promise<void> => new Promise((r) => setTimeout(r, ms));
const log = { debug: () => {}, info: () => {}, warn: () => {}, progress: () => {} } as unknown as Logger;
const kube = {
  namespace: 'team-a',
  kc: { makeApiClient: () => ({ createSelfSubjectAccessReview: () => Promise.resolve({ status: { allowed: true } }) }) },
} as unknown as Kube;

describe('the watches that keep --mount in step', () => {
  it('a watch the API server ended is restarted, and only the live one is aborted at the end', async () => {
    const objects = { configMaps: new Map(), secrets: new Map() };
    const stop = await watchObjects(kube, { configMaps: ['app'], secrets: [] }, objects, () => {}, log);
    await tick();
    // The API server ends each watch after a while (its timeout): kt starts a new one. These end at
    // once, so each restart waits a second (no busy loop behind a proxy that cuts watches).
    for (let i = 0; i < 3; i++) {
      const before = started.length;
      started.at(-1)!.end(null);
      await tick();
      expect(started).toHaveLength(before);
      await tick(1100);
    }
    expect(started).toHaveLength(4);
    stop();
    expect(started.map((w) => w.controller.signal.aborted)).toEqual([false, false, false, true]);
  });
});
