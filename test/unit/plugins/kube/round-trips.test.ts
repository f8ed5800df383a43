import { afterEach, describe, expect, it, vi } from 'vitest';
import { begin, criticalPath, finish, phase, reportCriticalPath, resetRoundTrips, turnCounter } from '../../../../plugins/kube/round-trips.ts';

afterEach(() => { resetRoundTrips(); vi.useRealTimers(); });

/** Trips at fixed times: performance.now() is what round-trips.ts reads. */
function at(ms: number): void {
  vi.spyOn(performance, 'now').mockReturnValue(ms);
}

describe('round trips on the critical path', () => {
  it('trips one after another add up; trips at once count once', () => {
    at(0); const a = begin('GET namespaces/x');
    at(10); finish(a);
    // Three reviews sent together: one round trip on the path, however many there are.
    at(11); const r = [begin('POST selfsubjectaccessreviews'), begin('POST selfsubjectaccessreviews'), begin('POST selfsubjectaccessreviews')];
    at(20); r.forEach((t) => finish(t));
    at(21); const c = begin('POST pods', 3);
    at(40); finish(c);
    const { turns, chain } = criticalPath(50);
    expect(turns).toBe(5);
    expect(chain.map((t) => t.what)).toEqual(['GET namespaces/x', 'POST selfsubjectaccessreviews', 'POST pods']);
  });

  it('a long trip beside several short ones in a row: the chain with more round trips wins', () => {
    at(0); const long = begin('port-forward upgrade', 2);
    const s1 = begin('GET a');
    at(5); finish(s1); const s2 = begin('GET b');
    at(10); finish(s2); const s3 = begin('GET c');
    at(15); finish(s3);
    at(30); finish(long);
    expect(criticalPath(40).turns).toBe(3);
  });

  it('a byte stream counts a round trip each time an answer follows what the laptop sent', () => {
    at(0); const c = turnCounter('SSH handshake');
    c.out(); c.out(); c.in(); c.in(); // one exchange, answered in two pieces
    c.out(); c.in();
    c.in(); // unasked: no round trip
    at(5); c.done();
    expect(criticalPath(10).turns).toBe(2);
  });

  it('--debug gets one line per phase with its ms and round trips, and the total', () => {
    at(100); phase('check the namespace and rights');
    const a = begin('GET namespaces/x');
    at(110); finish(a);
    phase('create the shadow pod');
    const b = begin('POST pods');
    at(130); finish(b);
    const lines: string[] = [];
    reportCriticalPath({ progress: () => {}, info: () => {}, warn: () => {}, debug: (m) => lines.push(m) }, 'kt-connect');
    expect(lines).toEqual([
      'kt-connect: ready 130 ms after the process started; 2 round trips on the critical path',
      '  process start (Node, modules, flags): 100 ms, 0 round trips',
      '  check the namespace and rights: 10 ms, 1 round trip (GET namespaces/x 10 ms)',
      '  create the shadow pod: 20 ms, 1 round trip (POST pods 20 ms)',
    ]);
  });
});
