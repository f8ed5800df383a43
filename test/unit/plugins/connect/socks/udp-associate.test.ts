// The SOCKS5 UDP request header (RFC 1928 §7) and the UDP ASSOCIATE reply, checked against the
// `socks` package's own frames.
import { isIPv6 } from 'node:net';
import { SocksClient } from 'socks';
import { describe, expect, it } from 'vitest';
import { associateReply, parseSocksUdp, socksUdpHeader } from '../../../../../plugins/connect/socks/udp-associate.ts';

const data = Buffer.from('payload');
const canonical = (host: string): string => (isIPv6(host) ? new URL(`http://[${host}]/`).hostname.slice(1, -1) : host);

describe('SOCKS5 UDP request header', () => {
  it.each([
    ['IPv4', '10.96.0.10', 1],
    ['a name', 'echo.dev', 3],
    ['IPv6', '2001:db8::1', 4],
    ['IPv6 loopback', '::1', 4],
  ] as const)('parses what the socks package frames for %s, and frames the same bytes back', (_what, host, atyp) => {
    const frame = SocksClient.createUDPFrame({ remoteHost: { host, port: 7070 }, data });
    const d = parseSocksUdp(frame);
    expect(d).toEqual({ frag: 0, host, port: 7070, atyp, payload: data });
    expect(Buffer.concat([socksUdpHeader(host, 7070, atyp), data])).toEqual(frame);
    const back = SocksClient.parseUDPFrame(Buffer.concat([socksUdpHeader(host, 7070, atyp), data])).remoteHost;
    // The package writes IPv6 uncompressed.
    expect({ ...back, host: canonical(back.host) }).toEqual({ host, port: 7070 });
  });

  it('writes IPv6 in its canonical form', () => {
    const frame = Buffer.concat([Buffer.from([0, 0, 0, 4]), Buffer.from('20010db8000000000000000000000001', 'hex'), Buffer.from([0, 53])]);
    expect(parseSocksUdp(frame)?.host).toBe('2001:db8::1');
  });

  it('reads FRAG, so the relay can drop fragments', () => {
    const frame = SocksClient.createUDPFrame({ remoteHost: { host: '10.0.0.1', port: 1 }, data, frameNumber: 2 });
    expect(parseSocksUdp(frame)?.frag).toBe(2);
  });

  it.each([
    ['too short', [0, 0, 0]],
    ['an unknown address type', [0, 0, 0, 9, 1, 2, 3, 4, 0, 1]],
    ['a cut IPv4 address', [0, 0, 0, 1, 10, 0, 0]],
    ['an empty name', [0, 0, 0, 3, 0, 0, 1]],
    ['a name longer than the datagram', [0, 0, 0, 3, 20, 0x61, 0, 1]],
    ['no port after an IPv6 address', [0, 0, 0, 4, ...new Array<number>(16).fill(0)]],
  ])('refuses %s', (_what, bytes) => {
    expect(parseSocksUdp(Buffer.from(bytes))).toBeUndefined();
  });

  it('an empty payload is a datagram too', () => {
    expect(parseSocksUdp(socksUdpHeader('10.0.0.1', 9, 1))?.payload.length).toBe(0);
  });
});

describe('UDP ASSOCIATE reply', () => {
  it('names the relay: succeeded, IPv4 or IPv6, and the port', () => {
    expect(associateReply('127.0.0.1', 40000)).toEqual(Buffer.from([5, 0, 0, 1, 127, 0, 0, 1, 0x9c, 0x40]));
    expect(associateReply('::1', 1)).toEqual(Buffer.from([5, 0, 0, 4, ...new Array<number>(15).fill(0), 1, 0, 1]));
  });
});
