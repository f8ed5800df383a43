// Who may use the dashboard: the token on every request, the Host it was started on, and for
// changes the token in a header plus the dashboard's own Origin.
import { describe, expect, it } from 'vitest';
import { allowedHosts, checkRequest, newToken } from '../../../../plugins/dashboard/security.ts';

const token = newToken();
const hosts = allowedHosts('127.0.0.1', 8080);
type Req = Parameters<typeof checkRequest>[0];
const get = (url: string, headers: Req['headers'] = {}): Req => ({ method: 'GET', url, headers: { host: '127.0.0.1:8080', ...headers } });
const post = (headers: Req['headers']): Req => ({ method: 'POST', url: '/api/clean', headers: { host: '127.0.0.1:8080', 'content-type': 'application/json', ...headers } });

describe('checkRequest', () => {
  it('tokens are long and fresh', () => {
    expect(token).toMatch(/^[A-Za-z0-9_-]{32}$/);
    expect(newToken()).not.toBe(token);
  });

  it('reads need the token (query or header); without it, or a wrong one, 401', () => {
    expect(checkRequest(get(`/?token=${token}`), token, hosts).ok).toBe(true);
    expect(checkRequest(get('/events', { 'x-kt-token': token }), token, hosts).ok).toBe(true);
    expect(checkRequest(get('/'), token, hosts)).toMatchObject({ ok: false, status: 401 });
    expect(checkRequest(get(`/?token=${token.slice(1)}`), token, hosts)).toMatchObject({ ok: false, status: 401 });
    expect(checkRequest(get(`/?token=${token}x`), token, hosts)).toMatchObject({ ok: false, status: 401 });
  });

  it('answers only to the names it was started on (no DNS rebinding)', () => {
    expect(checkRequest(get(`/?token=${token}`, { host: 'localhost:8080' }), token, hosts).ok).toBe(true);
    expect(checkRequest(get(`/?token=${token}`, { host: 'evil.example:8080' }), token, hosts)).toMatchObject({ ok: false, status: 403, reason: 'unknown host' });
    expect(checkRequest(get(`/?token=${token}`, { host: '127.0.0.1:9999' }), token, hosts).ok).toBe(false);
  });

  it('changes need the token in a header AND the same Origin (no CSRF)', () => {
    const origin = 'http://127.0.0.1:8080';
    expect(checkRequest(post({ 'x-kt-token': token, origin }), token, hosts).ok).toBe(true);
    // A form on another site can send neither the header nor our Origin.
    expect(checkRequest(post({ origin }), token, hosts)).toMatchObject({ ok: false, status: 401 });
    expect(checkRequest({ ...post({ 'x-kt-token': token, origin }), url: `/api/clean?token=${token}`, headers: { host: '127.0.0.1:8080', origin, 'content-type': 'application/json' } }, token, hosts)).toMatchObject({ ok: false, status: 401 });
    expect(checkRequest(post({ 'x-kt-token': token, origin: 'http://evil.example' }), token, hosts)).toMatchObject({ ok: false, status: 403, reason: 'cross-origin request' });
    expect(checkRequest(post({ 'x-kt-token': token }), token, hosts)).toMatchObject({ ok: false, status: 403 });
    expect(checkRequest(post({ 'x-kt-token': token, origin, 'content-type': 'text/plain' }), token, hosts)).toMatchObject({ ok: false, status: 400 });
    expect(checkRequest({ method: 'DELETE', url: '/', headers: { host: '127.0.0.1:8080', 'x-kt-token': token } }, token, hosts)).toMatchObject({ ok: false, status: 405 });
  });
});
