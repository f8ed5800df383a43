import { describe, expect, it } from 'vitest';
import { command, parse } from '../../../../plugins/cli/cli.ts';
import { CONNECT_FLAGS, parseConnectFlags } from '../../../../plugins/connect/flags.ts';

const cmd = command({ name: 'kt-connect', summary: '', usage: '', flags: CONNECT_FLAGS, run: () => Promise.resolve(0) });
/** The flags as the command line gives them, e.g. { mode: 'socks', 'include-cidr': ['a', 'b'] }. */
const parsed = (flags: Record<string, string | string[]>): Parameters<typeof parseConnectFlags>[0] => {
  const argv = Object.entries(flags).flatMap(([k, v]) => (Array.isArray(v) ? v : [v]).flatMap((x) => [`--${k}`, x]));
  return { ...parse(cmd, argv), clusterDomain: 'cluster.local' };
};

describe('kt-connect flags are checked before anything is created', () => {
  it('refuses a port out of range in every mode, not only where it is used', () => {
    for (const mode of ['socks', 'hosts']) {
      expect(() => parseConnectFlags(parsed({ mode, 'proxy-port': '99999' }))).toThrow('--proxy-port must be a port number (0-65535), not "99999".');
    }
    expect(() => parseConnectFlags(parsed({ mode: 'socks', 'dns-port': '0' }))).toThrow(/--dns-port must be a port number \(1-65535\)/);
    expect(() => parseConnectFlags(parsed({ mode: 'socks', 'proxy-port': '22a' }))).toThrow(/not "22a"/);
  });

  it('refuses a CIDR that is not one, and CIDR flags outside transparent mode', () => {
    expect(() => parseConnectFlags(parsed({ mode: 'socks', 'include-cidr': ['10.0.0.0/8'] }))).toThrow('--include-cidr only applies to --mode transparent (this session is socks).');
    expect(() => parseConnectFlags(parsed({ mode: 'socks', 'include-cidr': ['10.0.0.0/33'] }))).toThrow('--include-cidr: "10.0.0.0/33" is not an IP address or CIDR (like 10.96.0.0/12).');
    expect(() => parseConnectFlags(parsed({ mode: 'socks', 'exclude-cidr': ['300.1.1.1'] }))).toThrow(/"300.1.1.1" is not an IP address/);
  });

  it('takes --udp-idle-timeout as a duration from 1s to 1h', () => {
    expect(parseConnectFlags(parsed({ mode: 'socks' })).udpIdleMs).toBe(60_000);
    expect(parseConnectFlags(parsed({ mode: 'socks', 'udp-idle-timeout': '1m30s' })).udpIdleMs).toBe(90_000);
    expect(() => parsed({ mode: 'socks', 'udp-idle-timeout': '500ms' })).toThrow('--udp-idle-timeout must be at least 1s, not "500ms".');
    expect(() => parsed({ mode: 'socks', 'udp-idle-timeout': 'soon' })).toThrow('--udp-idle-timeout "soon" is not a duration; use e.g. 90s, 5m or 1h.');
    expect(() => parseConnectFlags(parsed({ mode: 'hosts', 'udp-idle-timeout': '2h' }))).toThrow('--udp-idle-timeout must be at most 1h, not 2h.');
  });

  it('accepts good values', () => {
    const f = parseConnectFlags(parsed({ mode: 'socks', 'proxy-port': '0' }));
    expect(f).toMatchObject({ mode: 'socks', proxyPort: 0, dnsPort: 53 });
  });
});
