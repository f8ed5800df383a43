// HTTP/1.1 message framing for the router's fast path (http1-fast.ts): strict parsing of request
// and response heads, and a scanner that finds where a chunked body ends. Nothing here copies or
// changes body bytes; the fast path forwards them as they came.
//
// The request parser is deliberately narrower than node:http's: whatever it does not accept is
// not an error but a request for node:http to handle (http1-fast.ts hands the connection over),
// so anything ambiguous is left to the parser that has been hardened against request smuggling.
//
// Heads are parsed on their bytes into offsets, without making a string per field: at tens of
// thousands of requests a second, per-field strings and objects were most of what the router
// allocated, and young-generation collections are what its tail latency waited on.

import { ROUTER_PROBE } from '../../contract/index.ts';

/** Heads (request line or status line plus header fields) larger than this are not taken. */
export const MAX_HEAD_BYTES = 64 * 1024;

const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');
const CR = 0x0d;
const LF = 0x0a;
const SP = 0x20;
const HTAB = 0x09;

/**
 * Where the head starting at `start` ends (the offset just past its blank line), or -1 when
 * `buf` does not hold all of it yet. `from` is where the previous search stopped, so a head
 * arriving in many pieces is not searched from the start each time.
 */
export function findHeadEnd(buf: Buffer, start: number, from = start): number {
  const at = buf.indexOf(CRLF_CRLF, Math.max(start, from - 3));
  return at < 0 ? -1 : at + 4;
}

/**
 * True when the bytes of an unfinished head already show it will not parse: a line ended by a
 * bare LF (which would otherwise keep the head from ever ending in CRLF CRLF).
 */
export function hasBareLf(buf: Buffer, start: number, end: number): boolean {
  for (let at = buf.indexOf(LF, start); at >= 0 && at < end; at = buf.indexOf(LF, at + 1)) {
    if (at === start || buf[at - 1] !== CR) return true;
  }
  return false;
}

/** The header fields the fast path acts on; everything else is `Other`. */
export const Field = {
  Other: 0,
  Host: 1,
  ContentLength: 2,
  TransferEncoding: 3,
  Connection: 4,
  KeepAlive: 5,
  ProxyConnection: 6,
  Upgrade: 7,
  Expect: 8,
  Te: 9,
  Baggage: 10,
  /** The route table's version header (see `parseRequestHead`). */
  Mark: 11,
  /** Set by the fast path on fields it leaves out when it passes a head on. */
  Dropped: 12,
  /** The laptop's probe (contract ROUTER_PROBE): the router answers it itself. */
  Probe: 13,
} as const;
export type FieldKind = (typeof Field)[keyof typeof Field];

const KNOWN: readonly (readonly [string, FieldKind])[] = [
  ['host', Field.Host],
  ['content-length', Field.ContentLength],
  ['transfer-encoding', Field.TransferEncoding],
  ['connection', Field.Connection],
  ['keep-alive', Field.KeepAlive],
  ['proxy-connection', Field.ProxyConnection],
  ['upgrade', Field.Upgrade],
  ['expect', Field.Expect],
  ['te', Field.Te],
  ['baggage', Field.Baggage],
  // Compared only with fields of its length (15: Accept-Encoding, Accept-Language), which differ
  // at the first byte: the hot path pays nothing measurable for it.
  [ROUTER_PROBE.header, Field.Probe],
];
/** Known names as lower-case bytes, and their kinds at the same index, grouped by length. */
const KNOWN_NAMES: Buffer[][] = [];
const KNOWN_KINDS: FieldKind[][] = [];
for (const [name, kind] of KNOWN) {
  (KNOWN_NAMES[name.length] ??= []).push(Buffer.from(name, 'latin1'));
  (KNOWN_KINDS[name.length] ??= []).push(kind);
}

/** Bytes allowed in a token (RFC 9110 section 5.6.2): field names and methods. */
const TOKEN_BYTE = new Uint8Array(256);
for (const c of "!#$%&'*+-.^_`|~") TOKEN_BYTE[c.charCodeAt(0)] = 1;
for (let c = 0x30; c <= 0x39; c++) TOKEN_BYTE[c] = 1;
for (let c = 0x41; c <= 0x5a; c++) TOKEN_BYTE[c] = TOKEN_BYTE[c + 0x20] = 1;

/** Whether `buf[start, end)` equals `lower` (lower-case ASCII), ignoring ASCII case. */
export function equalsLower(buf: Buffer, start: number, end: number, lower: Buffer): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const c = buf[start + i]!;
    if ((c >= 0x41 && c <= 0x5a ? c | 0x20 : c) !== lower[i]) return false;
  }
  return true;
}

function fieldKind(buf: Buffer, start: number, end: number, mark: Buffer | undefined): FieldKind {
  const names = KNOWN_NAMES[end - start];
  if (names !== undefined) {
    for (let i = 0; i < names.length; i++) if (equalsLower(buf, start, end, names[i]!)) return KNOWN_KINDS[end - start]![i]!;
  }
  return mark !== undefined && equalsLower(buf, start, end, mark) ? Field.Mark : Field.Other;
}

/** Numbers per field in `Head.fields`. */
export const FIELD_STRIDE = 5;
/** Offsets of one field's numbers: its kind, then absolute offsets into `Head.buf`. */
export const F_KIND = 0;
/** Start of the field line (its name). */
export const F_LINE = 1;
/** Start and end of the value, surrounding whitespace excluded. */
export const F_VALUE = 2;
export const F_VALUE_END = 3;
/** End of the field line (where its CRLF starts). */
export const F_LINE_END = 4;

export interface Head {
  /** The bytes the head was read from; all offsets are into it. */
  readonly buf: Buffer;
  readonly start: number;
  /** Just past the blank line that ends the head. */
  readonly end: number;
  /** End of the request or status line (where its CRLF starts). */
  readonly lineEnd: number;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  readonly minor: 0 | 1;
  /** FIELD_STRIDE numbers per field line, in order: see F_KIND and the offsets after it. */
  readonly fields: number[];
}

export interface RequestHead extends Head {
  readonly method: string;
  readonly targetStart: number;
  readonly targetEnd: number;
}

export interface ResponseHead extends Head {
  readonly status: number;
}

/** Collects fields while a head is parsed, so that each head's array is made once, at its size. */
const scratch: number[] = [];

/**
 * Reads the field lines from `at` to the blank line that ends at `end`; undefined when a line is
 * not a plain `name: value` (obs-fold, a bare CR or LF, whitespace before the colon, a bad name,
 * a control character in the value).
 */
function parseFields(buf: Buffer, at: number, end: number, mark: Buffer | undefined): number[] | undefined {
  scratch.length = 0;
  // The blank line's CRLF starts here.
  const last = end - 2;
  while (at < last) {
    const line = at;
    while (at < last && TOKEN_BYTE[buf[at]!] === 1) at++;
    if (at === line || buf[at] !== 0x3a) return undefined;
    const kind = fieldKind(buf, line, at, mark);
    at++;
    while (buf[at] === SP || buf[at] === HTAB) at++;
    const value = at;
    let valueEnd = at;
    for (;;) {
      const c = buf[at]!;
      if (c === CR) break;
      if ((c < 0x20 && c !== HTAB) || c === 0x7f) return undefined;
      at++;
      if (c !== SP && c !== HTAB) valueEnd = at;
    }
    if (at >= last + 1 || buf[at + 1] !== LF) return undefined;
    scratch.push(kind, line, value, valueEnd, at);
    at += 2;
  }
  return scratch.slice();
}

/**
 * Parses a complete request head (`buf[start, end)` ends with its blank line). Undefined: not a
 * plain HTTP/1.0 or 1.1 request head this parser vouches for. Fields named `mark` (lower-case
 * bytes) are of kind `Field.Mark`.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number, mark?: Buffer): RequestHead | undefined {
  if (end - start > MAX_HEAD_BYTES) return undefined;
  // Exactly "METHOD SP target SP HTTP/1.x CRLF".
  let at = start;
  while (TOKEN_BYTE[buf[at]!] === 1) at++;
  if (at === start || buf[at] !== SP) return undefined;
  const methodEnd = at;
  const targetStart = ++at;
  for (let c = buf[at]!; c >= 0x21 && c <= 0x7e; c = buf[++at]!);
  if (at === targetStart || buf[at] !== SP) return undefined;
  const targetEnd = at;
  const lineEnd = at + 9;
  if (lineEnd + 2 > end || !isHttp1(buf, at + 1) || buf[lineEnd] !== CR || buf[lineEnd + 1] !== LF) return undefined;
  const fields = parseFields(buf, lineEnd + 2, end, mark);
  if (fields === undefined) return undefined;
  const method = buf.toString('latin1', start, methodEnd);
  return { buf, start, end, lineEnd, minor: buf[lineEnd - 1] === 0x31 ? 1 : 0, fields, method, targetStart, targetEnd };
}

/** "HTTP/1.0" or "HTTP/1.1" at `at`. */
function isHttp1(buf: Buffer, at: number): boolean {
  const minor = buf[at + 7];
  return (
    buf[at] === 0x48 && buf[at + 1] === 0x54 && buf[at + 2] === 0x54 && buf[at + 3] === 0x50 &&
    buf[at + 4] === 0x2f && buf[at + 5] === 0x31 && buf[at + 6] === 0x2e && (minor === 0x30 || minor === 0x31)
  );
}

/**
 * Parses a complete response head. Undefined: not an HTTP/1.x status line with plain field
 * lines (the fast path then fails the request rather than guess at the body's framing).
 */
export function parseResponseHead(buf: Buffer, start: number, end: number): ResponseHead | undefined {
  // "HTTP/1.x SSS[ reason]"
  if (end - start < 16 || !isHttp1(buf, start) || buf[start + 8] !== SP) return undefined;
  let status = 0;
  for (let i = start + 9; i < start + 12; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    status = status * 10 + d;
  }
  if (status < 100) return undefined;
  let lineEnd = start + 12;
  if (buf[lineEnd] === SP) {
    for (let c = buf[++lineEnd]!; c !== CR && c !== LF; c = buf[++lineEnd]!);
  }
  if (lineEnd + 2 > end || buf[lineEnd] !== CR || buf[lineEnd + 1] !== LF) return undefined;
  const fields = parseFields(buf, lineEnd + 2, end, undefined);
  if (fields === undefined) return undefined;
  return { buf, start, end, lineEnd, minor: buf[start + 7] === 0x31 ? 1 : 0, fields, status };
}

/** The request target, as text. */
export function requestTarget(head: RequestHead): string {
  return head.buf.toString('latin1', head.targetStart, head.targetEnd);
}

/** Field `i`'s name, lower-case. */
export function fieldName(head: Head, i: number): string {
  const at = i * FIELD_STRIDE;
  const f = head.fields;
  // The name runs from the line start to the colon.
  return head.buf.toString('latin1', f[at + F_LINE]!, head.buf.indexOf(0x3a, f[at + F_LINE]!)).toLowerCase();
}

/** Field `i`'s value, without surrounding whitespace. */
export function fieldValue(head: Head, i: number): string {
  const at = i * FIELD_STRIDE;
  return head.buf.toString('latin1', head.fields[at + F_VALUE]!, head.fields[at + F_VALUE_END]!);
}

/** Every field as name (lower-case) and value strings: for tests and logs, not the hot path. */
export function headerFields(head: Head): { name: string; value: string }[] {
  const out: { name: string; value: string }[] = [];
  for (let i = 0; i < head.fields.length / FIELD_STRIDE; i++) out.push({ name: fieldName(head, i), value: fieldValue(head, i) });
  return out;
}

/** A Content-Length value in `buf[start, end)`: digits only, not absurdly long; undefined otherwise. */
export function parseLength(buf: Buffer, start: number, end: number): number | undefined {
  if (end <= start || end - start > 15) return undefined;
  let n = 0;
  for (let i = start; i < end; i++) {
    const d = buf[i]! - 0x30;
    if (d < 0 || d > 9) return undefined;
    n = n * 10 + d;
  }
  return n;
}

/** What a Connection field's tokens say. */
export const ConnectionToken = { Close: 1, KeepAlive: 2, Other: 4 } as const;
const CLOSE = Buffer.from('close', 'latin1');
const KEEP_ALIVE = Buffer.from('keep-alive', 'latin1');

/** The ConnectionToken bits of a comma-separated list value in `buf[start, end)`. */
export function connectionTokens(buf: Buffer, start: number, end: number): number {
  let bits = 0;
  let at = start;
  while (at < end) {
    while (at < end && (buf[at] === SP || buf[at] === HTAB || buf[at] === 0x2c)) at++;
    const from = at;
    while (at < end && buf[at] !== 0x2c) at++;
    let to = at;
    while (to > from && (buf[to - 1] === SP || buf[to - 1] === HTAB)) to--;
    if (to === from) continue;
    if (equalsLower(buf, from, to, CLOSE)) bits |= ConnectionToken.Close;
    else if (equalsLower(buf, from, to, KEEP_ALIVE)) bits |= ConnectionToken.KeepAlive;
    else bits |= ConnectionToken.Other;
  }
  return bits;
}

const TIMEOUT = Buffer.from('timeout', 'latin1');

/** `timeout=N` in a Keep-Alive value in `buf[start, end)`, in seconds; undefined when absent. */
export function keepAliveTimeout(buf: Buffer, start: number, end: number): number | undefined {
  const space = (c: number | undefined): boolean => c === SP || c === HTAB;
  for (let at = start; at + TIMEOUT.length <= end; at++) {
    const before = buf[at - 1];
    if (at > start && before !== 0x2c && before !== 0x3b && !space(before)) continue;
    if (!equalsLower(buf, at, at + TIMEOUT.length, TIMEOUT)) continue;
    let i = at + TIMEOUT.length;
    while (i < end && space(buf[i])) i++;
    if (i >= end || buf[i] !== 0x3d) continue;
    i++;
    while (i < end && space(buf[i])) i++;
    const digits = i;
    let n = 0;
    for (let d = buf[i]! - 0x30; i < end && d >= 0 && d <= 9; d = buf[++i]! - 0x30) n = n * 10 + d;
    if (i > digits) return n;
  }
  return undefined;
}

/** The comma-separated tokens of a list-valued field, lower-case, empty members dropped. */
export function listTokens(value: string): string[] {
  const out: string[] = [];
  for (const part of value.split(',')) {
    const token = part.trim().toLowerCase();
    if (token !== '') out.push(token);
  }
  return out;
}

/** Where the chunked scanner is: in a size line, in chunk data, in the trailer section. */
const Chunk = {
  Size: 0,
  Ext: 1,
  SizeLf: 2,
  Data: 3,
  DataCr: 4,
  DataLf: 5,
  LineStart: 6,
  Trailer: 7,
  TrailerLf: 8,
  FinalLf: 9,
  Done: 10,
  Broken: 11,
} as const;
type ChunkState = (typeof Chunk)[keyof typeof Chunk];

/** Chunk sizes above this many hex digits would lose precision in a double. */
const MAX_SIZE_DIGITS = 13;

/**
 * Follows chunked framing (RFC 9112 section 7.1) across however the bytes are split, to find
 * where the body ends: after the last chunk, its trailer fields and the closing blank line.
 * Chunk data is skipped by count, never looked at.
 */
export class ChunkedScanner {
  private state: ChunkState = Chunk.Size;
  private remaining = 0;
  private digits = 0;
  private trailerBytes = 0;

  /** True once the end of the body was found. */
  get done(): boolean {
    return this.state === Chunk.Done;
  }

  /**
   * Scans `buf[start, end)`. Returns the offset just past the end of the body when it is in this
   * range, -1 when all of it belongs to the body and more is needed, -2 when the framing is
   * broken (the scanner stays broken).
   */
  scan(buf: Buffer, start: number, end: number): number {
    let i = start;
    while (i < end) {
      switch (this.state) {
        case Chunk.Data: {
          const take = Math.min(this.remaining, end - i);
          this.remaining -= take;
          i += take;
          if (this.remaining === 0) this.state = Chunk.DataCr;
          continue;
        }
        case Chunk.Size: {
          const c = buf[i]!;
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.digits > MAX_SIZE_DIGITS) return this.broken();
            this.remaining = this.remaining * 16 + v;
          } else if (this.digits === 0) return this.broken();
          else if (c === 0x0d) this.state = Chunk.SizeLf;
          else if (c === 0x3b || c === 0x20 || c === 0x09) this.state = Chunk.Ext;
          else return this.broken();
          break;
        }
        case Chunk.Ext: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = Chunk.SizeLf;
          else if (c === 0x0a || (++this.trailerBytes > MAX_HEAD_BYTES)) return this.broken();
          break;
        }
        case Chunk.SizeLf:
          if (buf[i] !== 0x0a) return this.broken();
          this.digits = 0;
          this.state = this.remaining === 0 ? Chunk.LineStart : Chunk.Data;
          break;
        case Chunk.DataCr:
          if (buf[i] !== 0x0d) return this.broken();
          this.state = Chunk.DataLf;
          break;
        case Chunk.DataLf:
          if (buf[i] !== 0x0a) return this.broken();
          this.state = Chunk.Size;
          this.trailerBytes = 0;
          break;
        case Chunk.LineStart: {
          const c = buf[i]!;
          if (c === 0x0d) this.state = Chunk.FinalLf;
          else if (c === 0x0a || c === 0x20 || c === 0x09) return this.broken();
          else this.state = Chunk.Trailer;
          if (++this.trailerBytes > MAX_HEAD_BYTES) return this.broken();
          break;
        }
        case Chunk.Trailer: {
          const at = buf.indexOf(0x0d, i);
          const stop = at < 0 || at >= end ? end : at;
          const lf = buf.indexOf(0x0a, i);
          if (lf >= 0 && lf < stop) return this.broken();
          this.trailerBytes += stop - i;
          if (this.trailerBytes > MAX_HEAD_BYTES) return this.broken();
          i = stop;
          if (stop < end) {
            this.state = Chunk.TrailerLf;
            i++;
          }
          continue;
        }
        case Chunk.TrailerLf:
          if (buf[i] !== 0x0a) return this.broken();
          this.state = Chunk.LineStart;
          break;
        case Chunk.FinalLf:
          if (buf[i] !== 0x0a) return this.broken();
          this.state = Chunk.Done;
          return i + 1;
        case Chunk.Done:
          return i;
        case Chunk.Broken:
          return -2;
      }
      i++;
    }
    if (this.state === Chunk.Broken) return -2;
    return this.state === Chunk.Done ? end : -1;
  }

  private broken(): number {
    this.state = Chunk.Broken;
    return -2;
  }
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  const lower = c | 0x20;
  if (lower >= 0x61 && lower <= 0x66) return lower - 0x61 + 10;
  return -1;
}
