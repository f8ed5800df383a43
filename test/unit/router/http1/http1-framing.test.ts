// The fast path's HTTP/1.1 framing (router/http1/http1-framing.ts): request and response heads found
// and parsed however the bytes are split, pipelined messages kept apart, chunked bodies (with
// extensions and trailers) delimited exactly, and anything malformed or ambiguous rejected.
import { describe, expect, it } from 'vitest';
import { ROUTER_PROBE } from '../../../../contract/index.ts';
import {
  ChunkedScanner,
  ConnectionToken,
  FIELD_STRIDE,
  F_KIND,
  F_LINE,
  F_LINE_END,
  Field,
  MAX_HEAD_BYTES,
  connectionTokens,
  findHeadEnd,
  hasBareLf,
  headerFields,
  keepAliveTimeout,
  listTokens,
  parseLength,
  parseRequestHead,
  parseResponseHead,
  requestTarget,
} from '../../../../router/http1/http1-framing.ts';

const bytes = (text: string): Buffer => Buffer.from(text, 'latin1');

/** Feeds `text` split at `cut` to a fresh scanner; the offset (in `text`) where the body ended, or -1/-2. */
function scanSplit(text: string, cut: number): number {
  const all = bytes(text);
  const scanner = new ChunkedScanner();
  const first = scanner.scan(all.subarray(0, cut), 0, cut);
  if (first !== -1) return first;
  const second = scanner.scan(all.subarray(cut), 0, all.length - cut);
  return second < 0 ? second : cut + second;
}

/** Finds the head end the way the fast path does: bytes arriving in two pieces, searched incrementally. */
function headEndSplit(text: string, cut: number): number {
  const first = bytes(text.slice(0, cut));
  const firstEnd = findHeadEnd(first, 0);
  if (firstEnd >= 0) return firstEnd;
  return findHeadEnd(bytes(text), 0, first.length);
}

describe('request heads', () => {
  const request = 'GET /p?q=1 HTTP/1.1\r\nHost: svc:8080\r\nKT-Version:  A \r\nbaggage: k=v\r\nbaggage: kt-version=B\r\n\r\n';

  it('parses method, target, version and fields', () => {
    const buf = bytes(request);
    const end = findHeadEnd(buf, 0);
    expect(end).toBe(buf.length);
    const head = parseRequestHead(buf, 0, end, bytes('kt-version'))!;
    expect(head).toMatchObject({ method: 'GET', minor: 1 });
    expect(requestTarget(head)).toBe('/p?q=1');
    expect(headerFields(head).map((f) => [f.name, f.value])).toEqual([
      ['host', 'svc:8080'],
      ['kt-version', 'A'],
      ['baggage', 'k=v'],
      ['baggage', 'kt-version=B'],
    ]);
    const kinds = head.fields.filter((_, i) => i % FIELD_STRIDE === F_KIND);
    expect(kinds).toEqual([Field.Host, Field.Mark, Field.Baggage, Field.Baggage]);
    // Offsets point at the whole line.
    const at = 1 * FIELD_STRIDE;
    expect(buf.toString('latin1', head.fields[at + F_LINE], head.fields[at + F_LINE_END])).toBe('KT-Version:  A ');
    expect(buf.toString('latin1', 0, head.lineEnd)).toBe('GET /p?q=1 HTTP/1.1');
    // Without a mark the version header is just another field.
    expect(parseRequestHead(buf, 0, end)!.fields[at + F_KIND]).toBe(Field.Other);
  });

  it('knows the laptop\'s probe field by its bytes, in any case; fields of its length stay Other', () => {
    const buf = bytes(`OPTIONS /.kt/probe HTTP/1.1\r\nHost: svc\r\nAccept-Encoding: gzip\r\n${ROUTER_PROBE.header.toUpperCase()}: 1\r\nAccept-Language: en\r\n\r\n`);
    const head = parseRequestHead(buf, 0, buf.length, bytes('kt-version'))!;
    expect(head.fields.filter((_, i) => i % FIELD_STRIDE === F_KIND)).toEqual([Field.Host, Field.Other, Field.Probe, Field.Other]);
  });

  it('finds the end of the head at every split', () => {
    for (let cut = 0; cut <= request.length; cut++) expect(headEndSplit(request, cut), `cut ${cut}`).toBe(request.length);
  });

  it('keeps pipelined requests apart', () => {
    const second = 'POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc';
    const third = 'GET /c HTTP/1.0\r\n\r\n';
    const buf = bytes(request + second + third);
    const end1 = findHeadEnd(buf, 0);
    const end2 = findHeadEnd(buf, end1);
    const head2 = parseRequestHead(buf, end1, end2)!;
    expect(head2).toMatchObject({ method: 'POST', start: end1, end: end2 });
    expect(requestTarget(head2)).toBe('/b');
    expect(headerFields(head2).find((f) => f.name === 'content-length')?.value).toBe('3');
    const start3 = end2 + 3;
    const head3 = parseRequestHead(buf, start3, findHeadEnd(buf, start3))!;
    expect(head3).toMatchObject({ method: 'GET', minor: 0, fields: [] });
    expect(requestTarget(head3)).toBe('/c');
  });

  it('rejects what it does not vouch for', () => {
    const bad = [
      'GET / HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n', // obs-fold
      'GET / HTTP/1.1\r\nHost : x\r\n\r\n', // space before the colon
      'GET / HTTP/1.1\r\nHo\u0000st: x\r\n\r\n',
      'GET / HTTP/1.1\r\nHost: x\ry\r\n\r\n', // bare CR
      'GET / HTTP/1.1\r\nHost: x\ny: z\r\n\r\n', // bare LF
      'GET / HTTP/1.1\r\nNoColon\r\n\r\n',
      'GET / HTTP/2.0\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.10\r\nHost: x\r\n\r\n',
      'GET  / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / x HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET /\u00e9 HTTP/1.1\r\nHost: x\r\n\r\n',
      'G(T / HTTP/1.1\r\nHost: x\r\n\r\n',
      '\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n',
      'GET / HTTP/1.1\r\n: empty\r\n\r\n',
    ];
    for (const text of bad) {
      const buf = bytes(text);
      expect(parseRequestHead(buf, 0, findHeadEnd(buf, 0)), JSON.stringify(text)).toBeUndefined();
    }
    const big = bytes(`GET / HTTP/1.1\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`);
    expect(parseRequestHead(big, 0, findHeadEnd(big, 0))).toBeUndefined();
  });

  it('spots a bare LF before the head is complete', () => {
    expect(hasBareLf(bytes('GET / HTTP/1.1\nHost'), 0, 19)).toBe(true);
    expect(hasBareLf(bytes('\nGET'), 0, 4)).toBe(true);
    expect(hasBareLf(bytes('GET / HTTP/1.1\r\nHost'), 0, 20)).toBe(false);
  });
});

describe('response heads', () => {
  it('parses status, version and fields', () => {
    const buf = bytes('HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello');
    const head = parseResponseHead(buf, 0, findHeadEnd(buf, 0))!;
    expect(head).toMatchObject({ status: 200, minor: 1 });
    expect(headerFields(head)).toEqual([
      { name: 'content-length', value: '5' },
      { name: 'connection', value: 'keep-alive' },
    ]);
    expect(parseResponseHead(bytes('HTTP/1.0 204\r\n\r\n'), 0, 16)).toMatchObject({ status: 204, minor: 0 });
    expect(parseResponseHead(bytes('HTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n'), 0, 40)).toMatchObject({ status: 103 });
  });

  it('rejects broken status lines and fields', () => {
    for (const text of ['HTTP/1.1 2000 OK\r\n\r\n', 'HTTP/1.1 20 OK\r\n\r\n', 'HTTP/1.1 1e2 OK\r\n\r\n', 'HTTP/2 200 OK\r\n\r\n', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n', 'ICY 200 OK\r\n\r\n']) {
      const buf = bytes(text);
      expect(parseResponseHead(buf, 0, findHeadEnd(buf, 0)), JSON.stringify(text)).toBeUndefined();
    }
  });
});

describe('field values', () => {
  const length = (text: string): number | undefined => parseLength(bytes(text), 0, text.length);

  it('reads Content-Length strictly', () => {
    expect(length('0')).toBe(0);
    expect(length('1234')).toBe(1234);
    expect(length('9'.repeat(15))).toBe(999_999_999_999_999);
    for (const bad of ['', '-1', '+1', '1.0', '0x10', '1 2', '5, 5', '1'.repeat(16)]) expect(length(bad), bad).toBeUndefined();
  });

  it('reads Connection tokens without making strings', () => {
    const tokens = (text: string): number => connectionTokens(bytes(text), 0, text.length);
    expect(tokens('keep-alive')).toBe(ConnectionToken.KeepAlive);
    expect(tokens(' Close ')).toBe(ConnectionToken.Close);
    expect(tokens('Keep-Alive, ,X-Hop ,close')).toBe(ConnectionToken.KeepAlive | ConnectionToken.Other | ConnectionToken.Close);
    expect(tokens(',,')).toBe(0);
    expect(tokens('closed')).toBe(ConnectionToken.Other);
  });

  it('reads the Keep-Alive timeout', () => {
    const timeout = (text: string): number | undefined => keepAliveTimeout(bytes(text), 0, text.length);
    expect(timeout('timeout=5')).toBe(5);
    expect(timeout('max=100, Timeout = 30')).toBe(30);
    expect(timeout('max=5;timeout=7')).toBe(7);
    expect(timeout('xtimeout=5')).toBeUndefined();
    expect(timeout('timeout=')).toBeUndefined();
    expect(timeout('timeout')).toBeUndefined();
    expect(timeout('max=1')).toBeUndefined();
  });

  it('splits list values', () => {
    expect(listTokens(' Keep-Alive, ,X-Hop ,close')).toEqual(['keep-alive', 'x-hop', 'close']);
  });
});

describe('the chunked scanner', () => {
  const body = '5\r\nhello\r\n1A;ext=1;q="x"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n';
  const next = 'GET /next HTTP/1.1\r\n\r\n';

  it('finds the end of the body, trailers included, at every split', () => {
    for (let cut = 0; cut <= body.length; cut++) expect(scanSplit(body, cut), `cut ${cut}`).toBe(body.length);
  });

  it('stops at the end of the body when more follows (pipelining)', () => {
    const text = body + next;
    for (let cut = 0; cut <= text.length; cut++) expect(scanSplit(text, cut), `cut ${cut}`).toBe(body.length);
  });

  it('finds the end byte by byte, without trailers too', () => {
    const text = 'a\r\n0123456789\r\n0\r\n\r\n';
    const scanner = new ChunkedScanner();
    const buf = bytes(text);
    let end = -1;
    for (let i = 0; i < buf.length && end === -1; i++) end = scanner.scan(buf, i, i + 1);
    expect(end).toBe(buf.length);
    expect(scanner.done).toBe(true);
  });

  it('skips chunk data without looking at it', () => {
    const data = '0\r\n\r\n'.repeat(10);
    const text = `${data.length.toString(16)}\r\n${data}\r\n0\r\n\r\n`;
    for (let cut = 0; cut <= text.length; cut += 7) expect(scanSplit(text, cut)).toBe(text.length);
  });

  it('rejects broken framing, and stays broken', () => {
    const bad = [
      'x\r\n',
      '5\r\nhelloX\r\n',
      '5\nhello\r\n',
      '5\r\nhello\r\n0\r\nX: a\nY: b\r\n\r\n',
      '5\r\nhello\r\n0\r\n folded\r\n\r\n',
      '5\r\nhello\r\n0\r\n\rX',
      `${'f'.repeat(14)}\r\n`,
      '\r\n',
    ];
    for (const text of bad) {
      const scanner = new ChunkedScanner();
      const buf = bytes(text);
      expect(scanner.scan(buf, 0, buf.length), JSON.stringify(text)).toBe(-2);
      expect(scanner.scan(bytes('0\r\n\r\n'), 0, 5)).toBe(-2);
    }
  });

  it('limits the size of the trailer section', () => {
    const scanner = new ChunkedScanner();
    const buf = bytes(`0\r\nX: ${'a'.repeat(MAX_HEAD_BYTES)}\r\n\r\n`);
    expect(scanner.scan(buf, 0, buf.length)).toBe(-2);
  });
});
