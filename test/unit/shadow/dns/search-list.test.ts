import { describe, expect, it } from 'vitest';
import { isReverseName, isWithin, searchCandidates } from '../../../../shadow/dns/search-list.ts';

const pod = { search: ['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local'], ndots: 5 };

describe('searchCandidates', () => {
  it('tries a name with fewer dots than ndots with each suffix first, then as-is', () => {
    expect(searchCandidates('echo', pod)).toEqual([
      'echo.demo.svc.cluster.local',
      'echo.svc.cluster.local',
      'echo.cluster.local',
      'echo',
    ]);
    expect(searchCandidates('echo.demo', pod)).toEqual([
      'echo.demo.demo.svc.cluster.local',
      'echo.demo.svc.cluster.local',
      'echo.demo.cluster.local',
      'echo.demo',
    ]);
  });

  it('tries a name with ndots or more dots as-is first, then with each suffix', () => {
    expect(searchCandidates('echo.demo', { ...pod, ndots: 1 })).toEqual([
      'echo.demo',
      'echo.demo.demo.svc.cluster.local',
      'echo.demo.svc.cluster.local',
      'echo.demo.cluster.local',
    ]);
    expect(searchCandidates('a.b.c.d.e.f', pod)[0]).toBe('a.b.c.d.e.f');
  });

  it('with ndots 0 tries every name as-is first', () => {
    expect(searchCandidates('echo', { ...pod, ndots: 0 })[0]).toBe('echo');
  });

  it('tries an absolute name (trailing dot) as-is only', () => {
    expect(searchCandidates('echo.', pod)).toEqual(['echo']);
  });

  it('tries a name inside the cluster domain as-is only, when the cluster domain is known', () => {
    const withDomain = { ...pod, clusterDomain: 'cluster.local' };
    expect(searchCandidates('echo.demo.svc.cluster.local', withDomain)).toEqual(['echo.demo.svc.cluster.local']);
    expect(searchCandidates('Echo.Demo.SVC.Cluster.Local', withDomain)).toEqual(['Echo.Demo.SVC.Cluster.Local']);
    // Without it, the plain stub-resolver order (4 dots < ndots 5: suffixes first).
    expect(searchCandidates('echo.demo.svc.cluster.local', pod)).toHaveLength(4);
    expect(searchCandidates('echo.demo.svc.cluster.local', pod)[3]).toBe('echo.demo.svc.cluster.local');
  });

  it('never expands reverse names', () => {
    expect(searchCandidates('50.0.96.10.in-addr.arpa', pod)).toEqual(['50.0.96.10.in-addr.arpa']);
    expect(searchCandidates('1.0.0.0.ip6.arpa', pod)).toEqual(['1.0.0.0.ip6.arpa']);
  });

  it('drops duplicates and names longer than 253 characters', () => {
    expect(searchCandidates('x', { search: ['a', 'A', 'b'], ndots: 1 })).toEqual(['x.a', 'x.b', 'x']);
    const long = 'l'.repeat(250);
    expect(searchCandidates(long, { search: ['example'], ndots: 1 })).toEqual([long]);
  });

  it('without a search list is the name alone', () => {
    expect(searchCandidates('echo', { search: [], ndots: 5 })).toEqual(['echo']);
  });
});

describe('isWithin / isReverseName', () => {
  it('matches whole labels, ignoring case', () => {
    expect(isWithin('a.cluster.local', 'cluster.local')).toBe(true);
    expect(isWithin('CLUSTER.local', 'cluster.local')).toBe(true);
    expect(isWithin('acluster.local', 'cluster.local')).toBe(false);
    expect(isWithin('anything', '')).toBe(false);
    expect(isReverseName('4.3.2.1.IN-ADDR.ARPA')).toBe(true);
    expect(isReverseName('arpa')).toBe(false);
  });
});
