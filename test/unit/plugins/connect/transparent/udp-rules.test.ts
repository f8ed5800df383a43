// Transparent mode's UDP capture: the rules beside TCP's, --udp-ports, and the cleanup of both.
import { describe, expect, it } from 'vitest';
import { captureFromSaved, installScript, parseSavedChains, parseUdpPorts, planRules, removalScript } from '../../../../../plugins/connect/transparent/transparent.ts';

const base = { sessionId: 'abcdef0123456789', cidrs: ['10.96.0.0/16', '10.244.0.0/24'], exclude: ['10.201.0.1'], port: 41234 };

describe('UDP rules', () => {
  it('redirects UDP to the relay for every port but 53, through a jump of its own', () => {
    const plan = planRules({ ...base, udp: { port: 41235, ports: 'all' } });
    expect(plan.rules).toEqual([
      ['-d', '127.0.0.0/8', '-j', 'RETURN'],
      ['-d', '10.201.0.1/32', '-j', 'RETURN'],
      ['-d', '10.96.0.0/16', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', '41234'],
      ['-d', '10.244.0.0/24', '-p', 'tcp', '-j', 'REDIRECT', '--to-ports', '41234'],
      ['-p', 'udp', '--dport', '53', '-j', 'RETURN'],
      ['-d', '10.96.0.0/16', '-p', 'udp', '-j', 'REDIRECT', '--to-ports', '41235'],
      ['-d', '10.244.0.0/24', '-p', 'udp', '-j', 'REDIRECT', '--to-ports', '41235'],
    ]);
    expect(plan.udpJump).toEqual(['-p', 'udp', '-m', 'comment', '--comment', 'kt-session=abcdef0123456789', '-j', 'KT-abcdef01']);
    expect(installScript(plan).split('\n').filter((l) => l.startsWith('-I '))).toEqual([
      '-I OUTPUT 1 -p tcp -m comment --comment kt-session=abcdef0123456789 -j KT-abcdef01',
      '-I OUTPUT 1 -p udp -m comment --comment kt-session=abcdef0123456789 -j KT-abcdef01',
    ]);
  });

  it('redirects only the named ports and ranges (53 too, when named)', () => {
    const plan = planRules({ ...base, cidrs: ['10.96.0.0/16'], udp: { port: 41235, ports: [{ from: 8125, to: 8125 }, { from: 53, to: 60 }] } });
    expect(plan.rules.filter((r) => r.includes('udp'))).toEqual([
      ['-d', '10.96.0.0/16', '-p', 'udp', '--dport', '8125', '-j', 'REDIRECT', '--to-ports', '41235'],
      ['-d', '10.96.0.0/16', '-p', 'udp', '--dport', '53:60', '-j', 'REDIRECT', '--to-ports', '41235'],
    ]);
  });

  it('has no UDP rule or jump without UDP (the rules as before)', () => {
    const plan = planRules(base);
    expect(plan.udpJump).toBeUndefined();
    expect(plan.rules.some((r) => r.includes('udp'))).toBe(false);
  });

  it('refuses a UDP port out of bounds', () => {
    expect(() => planRules({ ...base, udp: { port: 0, ports: 'all' } })).toThrow(/0 is not a UDP port/);
    expect(() => planRules({ ...base, udp: { port: 1, ports: [{ from: 1, to: 65536 }] } })).toThrow(/65536 is not a UDP port/);
  });

  it('removes both jumps and the chain, and TCP capture ignores the UDP rules', () => {
    const plan = planRules({ ...base, udp: { port: 41235, ports: 'all' } });
    // What iptables-save prints after installScript.
    const saved = [
      '*nat',
      ':OUTPUT ACCEPT [0:0]',
      ':KT-abcdef01 - [0:0]',
      '-A OUTPUT -p udp -m comment --comment kt-session=abcdef0123456789 -j KT-abcdef01',
      '-A OUTPUT -p tcp -m comment --comment kt-session=abcdef0123456789 -j KT-abcdef01',
      ...plan.rules.map((r) => `-A KT-abcdef01 ${r.join(' ')}`),
      'COMMIT',
      '',
    ].join('\n');
    const chains = parseSavedChains(saved);
    expect(chains).toHaveLength(1);
    expect(chains[0]!.jumps).toHaveLength(2);
    expect(removalScript(chains)).toBe([
      '*nat',
      '-D OUTPUT -p udp -m comment --comment kt-session=abcdef0123456789 -j KT-abcdef01',
      '-D OUTPUT -p tcp -m comment --comment kt-session=abcdef0123456789 -j KT-abcdef01',
      '-F KT-abcdef01',
      '-X KT-abcdef01',
      'COMMIT',
      '',
    ].join('\n'));
    expect(captureFromSaved(saved, '10.96.0.10')).toMatchObject({ port: 41234, cidr: '10.96.0.0/16' });
  });
});

describe('--udp-ports', () => {
  it('takes all, none, ports and ranges', () => {
    expect(parseUdpPorts('all')).toEqual({ ports: 'all' });
    expect(parseUdpPorts('NONE')).toEqual({ ports: 'none' });
    expect(parseUdpPorts('8125,5000-5100')).toEqual({ ports: [{ from: 8125, to: 8125 }, { from: 5000, to: 5100 }] });
    expect(parseUdpPorts('1-65535')).toEqual({ ports: [{ from: 1, to: 65535 }] });
  });

  it('says what is wrong in one sentence', () => {
    expect(parseUdpPorts('0')).toEqual({ error: '0 is out of bounds: a UDP port is 1-65535.' });
    expect(parseUdpPorts('5000-70000')).toEqual({ error: '70000 is out of bounds: a UDP port is 1-65535.' });
    expect(parseUdpPorts('99999999999')).toEqual({ error: '"99999999999" is not a port or a range of ports (like 8125 or 5000-5100); or all, none.' });
    expect(parseUdpPorts('6000-5000')).toEqual({ error: '6000-5000 ends before it begins.' });
    expect(parseUdpPorts('dns')).toEqual({ error: '"dns" is not a port or a range of ports (like 8125 or 5000-5100); or all, none.' });
    expect(parseUdpPorts('')).toMatchObject({ error: expect.stringContaining('is not a port') });
  });
});
