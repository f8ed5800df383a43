import { describe, expect, it } from 'vitest';
import type { Parsed } from '../../../../plugins/cli/cli.ts';
import { parseConnectFlags } from '../../../../plugins/connect/flags.ts';

const parsed = (flags: Parsed['flags']): Parsed => ({ flags: { 'proxy-port': '2223', 'dns-port': '53', ...flags }, positionals: [], rest: [] });

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

  it('accepts good values', () => {
    const f = parseConnectFlags(parsed({ mode: 'socks', 'proxy-port': '0' }));
    expect(f).toMatchObject({ mode: 'socks', proxyPort: 0, dnsPort: 53 });
  });
});
