// The proxy's pure parts: environment, JVM flags, dial error mapping, IPv6 text, loopback addresses.
import { describe, expect, it } from 'vitest';
import {
  SOCKS5_REPLY,
  classifyDialError,
  formatIpv6,
  hostPort,
  jvmFlags,
  proxyEnv,
  socks5ReplyCode,
} from '../../../../../plugins/connect/socks/socks-proxy.ts';
import { createLoopbackAllocator, serviceFqdn, serviceHostNames } from '../../../../../plugins/connect/hosts/hosts-mode.ts';

function codeError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

describe('proxy environment', () => {
  it('points HTTP at the HTTP proxy, ALL_PROXY at socks5h, and exempts loopback', () => {
    expect(proxyEnv(2223)).toEqual({
      HTTP_PROXY: 'http://127.0.0.1:2223',
      http_proxy: 'http://127.0.0.1:2223',
      HTTPS_PROXY: 'http://127.0.0.1:2223',
      https_proxy: 'http://127.0.0.1:2223',
      ALL_PROXY: 'socks5h://127.0.0.1:2223',
      all_proxy: 'socks5h://127.0.0.1:2223',
      NO_PROXY: 'localhost,127.0.0.1,::1',
      no_proxy: 'localhost,127.0.0.1,::1',
    });
    expect(jvmFlags(2223)).toBe('-DsocksProxyHost=127.0.0.1 -DsocksProxyPort=2223');
  });
});

describe('dial error mapping', () => {
  it('maps codes to SOCKS5 replies', () => {
    expect(socks5ReplyCode(codeError('ECONNREFUSED'))).toBe(SOCKS5_REPLY.connectionRefused);
    expect(socks5ReplyCode(codeError('ENOTFOUND'))).toBe(SOCKS5_REPLY.hostUnreachable);
    expect(socks5ReplyCode(codeError('EHOSTUNREACH'))).toBe(SOCKS5_REPLY.hostUnreachable);
    expect(socks5ReplyCode(codeError('EAI_AGAIN'))).toBe(SOCKS5_REPLY.hostUnreachable);
    expect(socks5ReplyCode(codeError('ETIMEDOUT'))).toBe(SOCKS5_REPLY.hostUnreachable);
    expect(socks5ReplyCode(codeError('ENETUNREACH'))).toBe(SOCKS5_REPLY.networkUnreachable);
    expect(socks5ReplyCode(codeError('EPIPE'))).toBe(SOCKS5_REPLY.generalFailure);
    expect(socks5ReplyCode('weird')).toBe(SOCKS5_REPLY.generalFailure);
  });

  it('reads SSH channel-open failures from their text', () => {
    expect(classifyDialError(new Error('(SSH) Channel open failure: Connection refused'))).toBe('refused');
    expect(classifyDialError(new Error('getaddrinfo ENOTFOUND nope.ns.svc.cluster.local'))).toBe('unreachable');
    expect(classifyDialError(new Error('No route to host: host unreachable'))).toBe('unreachable');
    expect(classifyDialError(new Error('(SSH) Channel open failure: administratively prohibited'))).toBe('other');
  });
});

describe('addresses', () => {
  it('formats IPv6 addresses the RFC 5952 way', () => {
    const bytes = (text: string): Buffer => Buffer.from(text.replace(/ /g, ''), 'hex');
    expect(formatIpv6(bytes('0000 0000 0000 0000 0000 0000 0000 0001'))).toBe('::1');
    expect(formatIpv6(bytes('2001 0db8 0000 0000 0001 0000 0000 0001'))).toBe('2001:db8::1:0:0:1');
    expect(formatIpv6(bytes('2001 0db8 0000 0001 0001 0001 0001 0001'))).toBe('2001:db8:0:1:1:1:1:1');
    expect(formatIpv6(bytes('fd00 0000 0000 0000 0000 0000 0000 0000'))).toBe('fd00::');
    expect(formatIpv6(Buffer.alloc(16))).toBe('::');
    expect(hostPort('::1', 80)).toBe('[::1]:80');
    expect(hostPort('svc.ns', 80)).toBe('svc.ns:80');
  });

  it('hands out loopback addresses from 127.20.0.1, stable per key, skipping .0 and .255', () => {
    const allocator = createLoopbackAllocator();
    expect(allocator.allocate('dev/web')).toBe('127.20.0.1');
    expect(allocator.allocate('dev/db')).toBe('127.20.0.2');
    expect(allocator.allocate('dev/web')).toBe('127.20.0.1');
    allocator.release('dev/web');
    expect(allocator.allocate('dev/web')).toBe('127.20.0.3');

    const edge = createLoopbackAllocator('127.20.0.254');
    expect(['a', 'b', 'c'].map((k) => edge.allocate(k))).toEqual(['127.20.0.254', '127.20.1.1', '127.20.1.2']);
    expect(() => createLoopbackAllocator('10.0.0.1')).toThrow(/not a loopback/);
  });

  it('names Services by their cluster names, the bare name only in the session namespace', () => {
    expect(serviceHostNames({ name: 'web', namespace: 'dev' }, 'dev', 'cluster.local')).toEqual([
      'web',
      'web.dev',
      'web.dev.svc',
      'web.dev.svc.cluster.local',
    ]);
    expect(serviceHostNames({ name: 'db', namespace: 'other' }, 'dev', 'corp.example')).toEqual([
      'db.other',
      'db.other.svc',
      'db.other.svc.corp.example',
    ]);
    expect(serviceHostNames({ name: 'localhost', namespace: 'dev' }, 'dev', 'cluster.local')[0]).toBe('localhost.dev');
    expect(serviceFqdn({ name: 'web', namespace: 'dev' }, 'cluster.local')).toBe('web.dev.svc.cluster.local');
  });
});
