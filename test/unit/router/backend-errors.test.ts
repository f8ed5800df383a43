// Backend failure texts, gRPC message encoding, the rate-limited failure log and the router's env.
import { describe, expect, it } from 'vitest';
import { createFailureLog, encodeGrpcMessage, errorReason, unreachableMessage } from '../../../router/backend-errors.ts';
import { RouterConfigError, parseRouterEnv } from '../../../router/config.ts';
import { createLogger } from '../../../runtime/log.ts';

const route = { version: 'v1', target: 'svc-kt-v1.ns.svc.cluster.local', session: 'abc', user: 'alice' };

describe('unreachableMessage', () => {
  it('names the version, session, user, address and reason', () => {
    expect(unreachableMessage({ route, host: route.target, port: 8080 }, 'ECONNREFUSED')).toBe(
      'kt router: version "v1" (session abc by alice) unreachable at svc-kt-v1.ns.svc.cluster.local:8080: ECONNREFUSED',
    );
    expect(unreachableMessage({ route: undefined, host: 'fd00::1', port: 80 }, 'ETIMEDOUT')).toBe(
      'kt router: default target unreachable at [fd00::1]:80: ETIMEDOUT',
    );
  });
});

describe('errorReason', () => {
  it('prefers the code, and the cause of a cancelled HTTP/2 stream', () => {
    expect(errorReason(Object.assign(new Error('connect ECONNREFUSED 1.2.3.4:80'), { code: 'ECONNREFUSED' }))).toBe('ECONNREFUSED');
    const cause = Object.assign(new Error('getaddrinfo ENOTFOUND x'), { code: 'ENOTFOUND' });
    expect(errorReason(Object.assign(new Error('cancelled', { cause }), { code: 'ERR_HTTP2_STREAM_CANCEL' }))).toBe('ENOTFOUND');
    expect(errorReason(new Error('socket hang up'))).toBe('socket hang up');
    expect(errorReason('text')).toBe('text');
  });
});

describe('encodeGrpcMessage', () => {
  it('percent-encodes non-printable bytes and %', () => {
    expect(encodeGrpcMessage('version "v1" (a) at x:1: 100%')).toBe('version "v1" (a) at x:1: 100%25');
    expect(encodeGrpcMessage('é\n')).toBe('%C3%A9%0A');
  });
});

describe('createFailureLog', () => {
  it('logs once per destination and reason per interval, then counts what it left out', () => {
    const lines: Record<string, unknown>[] = [];
    let t = 0;
    const failures = createFailureLog({
      log: createLogger({ write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) }),
      intervalMs: 1000,
      now: () => t,
    });
    const dest = { route, host: route.target, port: 8080 };
    failures.report(dest, 'ECONNREFUSED', 'http');
    failures.report(dest, 'ECONNREFUSED', 'http');
    failures.report(dest, 'ECONNREFUSED', 'grpc');
    failures.report(dest, 'ETIMEDOUT', 'http');
    failures.report({ route: undefined, host: 'echo', port: 8080 }, 'ECONNREFUSED', 'http');
    expect(lines).toHaveLength(3);
    t = 1500;
    failures.report(dest, 'ECONNREFUSED', 'http');
    expect(lines).toHaveLength(4);
    expect(lines[0]).toMatchObject({ level: 'warn', msg: 'backend unreachable', version: 'v1', session: 'abc', user: 'alice', reason: 'ECONNREFUSED' });
    expect(lines[2]).toMatchObject({ version: null, target: 'echo:8080' });
    expect(lines[3]).toMatchObject({ reason: 'ECONNREFUSED', suppressed: 2 });
  });
});

describe('parseRouterEnv', () => {
  it('reads the log level and overrides', () => {
    expect(parseRouterEnv({})).toEqual({ logLevel: 'info', host: undefined, healthPort: 18090 });
    expect(parseRouterEnv({ KT_LOG_LEVEL: 'DEBUG', KT_HEALTH_PORT: '0', KT_LISTEN_HOST: '127.0.0.1' })).toEqual({
      logLevel: 'debug',
      host: '127.0.0.1',
      healthPort: 0,
    });
  });

  it('rejects bad values with a sentence', () => {
    expect(() => parseRouterEnv({ KT_LOG_LEVEL: 'loud' })).toThrow(RouterConfigError);
    expect(() => parseRouterEnv({ KT_HEALTH_PORT: '70000' })).toThrow(/KT_HEALTH_PORT/);
  });
});
