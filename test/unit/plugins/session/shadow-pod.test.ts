import { describe, expect, it } from 'vitest';
import type { CoreV1Event } from '@kubernetes/client-node';
import { latestEvent } from '../../../../plugins/session/shadow-pod.ts';

const ev = (reason: string, last?: string, created?: string): CoreV1Event => ({
  involvedObject: {}, metadata: created ? { creationTimestamp: new Date(created) } : {}, reason,
  ...(last ? { lastTimestamp: new Date(last) } : {}),
});

describe('why a shadow pod did not start', () => {
  it('names the event last seen, whatever order the list came in', () => {
    const items = [ev('Pulling', '2026-01-01T10:00:05Z'), ev('Failed', '2026-01-01T10:00:09Z'), ev('Scheduled', '2026-01-01T10:00:00Z')];
    expect(latestEvent(items)?.reason).toBe('Failed');
    expect(latestEvent([...items].reverse())?.reason).toBe('Failed');
  });

  it('falls back to the creation time, and has nothing to say without events', () => {
    expect(latestEvent([ev('A', undefined, '2026-01-01T10:00:01Z'), ev('B', undefined, '2026-01-01T10:00:00Z')])?.reason).toBe('A');
    expect(latestEvent([])).toBeUndefined();
  });
});
