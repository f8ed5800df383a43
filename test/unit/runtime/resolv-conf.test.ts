import { describe, expect, it } from 'vitest';
import { parseNameserver, parseResolvConf } from '../../../runtime/resolv-conf.ts';

describe('parseResolvConf', () => {
  it('reads a Kubernetes pod resolv.conf', () => {
    const conf = parseResolvConf(
      [
        'search demo.svc.cluster.local svc.cluster.local cluster.local',
        'nameserver 10.96.0.10',
        'options ndots:5',
        '',
      ].join('\n'),
    );
    expect(conf).toEqual({
      nameservers: [{ address: '10.96.0.10', port: 53 }],
      search: ['demo.svc.cluster.local', 'svc.cluster.local', 'cluster.local'],
      ndots: 5,
      timeoutMs: 5000,
      attempts: 2,
    });
  });

  it('defaults like the C library: ndots 1, 127.0.0.1, no search list', () => {
    expect(parseResolvConf('')).toEqual({
      nameservers: [{ address: '127.0.0.1', port: 53 }],
      search: [],
      ndots: 1,
      timeoutMs: 5000,
      attempts: 2,
    });
  });

  it('skips comments, blank lines and unknown keywords; keeps nameservers in order', () => {
    const conf = parseResolvConf(
      [
        '# generated',
        '; also a comment',
        '   ',
        'nameserver 10.0.0.1 # trailing comment',
        'sortlist 10.0.0.0/8',
        'nameserver fd00::10',
        'nameserver not-an-ip',
        'nameserver',
      ].join('\r\n'),
    );
    expect(conf.nameservers).toEqual([
      { address: '10.0.0.1', port: 53 },
      { address: 'fd00::10', port: 53 },
    ]);
  });

  it('lets the last search or domain line win', () => {
    expect(parseResolvConf('domain a.example\nsearch b.example. c.example').search).toEqual(['b.example', 'c.example']);
    expect(parseResolvConf('search b.example c.example\ndomain a.example').search).toEqual(['a.example']);
    expect(parseResolvConf('search x y x').search).toEqual(['x', 'y']);
  });

  it('reads options, clamped to the C library ranges, across lines', () => {
    const conf = parseResolvConf('options ndots:99 timeout:0\noptions attempts:3 rotate edns0\noptions ndots:x');
    expect(conf.ndots).toBe(15);
    expect(conf.timeoutMs).toBe(1000);
    expect(conf.attempts).toBe(3);
    expect(parseResolvConf('options ndots:0').ndots).toBe(0);
  });
});

describe('parseNameserver', () => {
  it.each([
    ['10.96.0.10', { address: '10.96.0.10', port: 53 }],
    ['127.0.0.1:5300', { address: '127.0.0.1', port: 5300 }],
    ['::1', { address: '::1', port: 53 }],
    ['[::1]:5300', { address: '::1', port: 5300 }],
    ['[fd00::10]', { address: 'fd00::10', port: 53 }],
    ['fe80::1%eth0', { address: 'fe80::1%eth0', port: 53 }],
  ])('reads %s', (token, expected) => {
    expect(parseNameserver(token)).toEqual(expected);
  });

  it.each([['dns.example'], ['10.0.0.1:0'], ['10.0.0.1:70000'], ['[nope]:53'], ['1.2.3:53']])('refuses %s', (token) => {
    expect(parseNameserver(token)).toBeUndefined();
  });
});
