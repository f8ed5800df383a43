// HTTP/1.1 message framing for the router's fast path (http1-fast.ts): strict parsing of request
// and response heads, and a scanner that finds where a chunked body ends. Nothing here copies or
// changes body bytes; the fast path forwards them as they came.
//
// The request parser is deliberately narrower than node:http's: whatever it does not accept is
// not an error but a request for node:http to handle (http1-fast.ts hands the connection over),
// so anything ambiguous is left to the parser that has been hardened against request smuggling.

/** Heads (request line or status line plus header fields) larger than this are not taken. */
export const MAX_HEAD_BYTES = 64 * 1024;

const CRLF_CRLF = Buffer.from('\r\n\r\n', 'latin1');

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
  for (let at = buf.indexOf(0x0a, start); at >= 0 && at < end; at = buf.indexOf(0x0a, at + 1)) {
    if (at === start || buf[at - 1] !== 0x0d) return true;
  }
  return false;
}

/** One header field line, as offsets into the head text. */
export interface HeaderField {
  /** Lower-case. */
  readonly name: string;
  /** Without surrounding whitespace. */
  readonly value: string;
  /** The whole line in the head text, without its CRLF. */
  readonly lineStart: number;
  readonly lineEnd: number;
}

export interface RequestHead {
  readonly method: string;
  readonly target: string;
  /** 1 for HTTP/1.1, 0 for HTTP/1.0. */
  readonly minor: 0 | 1;
  /** The head as latin1 text (one char per byte), from the request line to the blank line included. */
  readonly text: string;
  /** Offset of the end of the request line in `text`. */
  readonly lineEnd: number;
  readonly fields: readonly HeaderField[];
}

export interface ResponseHead {
  readonly status: number;
  readonly minor: 0 | 1;
  readonly text: string;
  readonly lineEnd: number;
  readonly fields: readonly HeaderField[];
}

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
// Control characters other than HTAB are not allowed in field values (RFC 9110 section 5.5).
// eslint-disable-next-line no-control-regex
const BAD_VALUE = /[\u0000-\u0008\u000a-\u001f\u007f]/;
// A request target: printable, no spaces (RFC 9112 section 3.2); obs-text is left to node:http.
const TARGET = /^[\u0021-\u007e]+$/;

/**
 * Splits a head's field lines; undefined when a line is not a plain `name: value` (obs-fold, a
 * bare CR or LF, whitespace before the colon, a bad name or value).
 */
function parseFields(text: string, from: number): HeaderField[] | undefined {
  const fields: HeaderField[] = [];
  // `text` ends with the blank line: the last field line ends where it starts.
  const last = text.length - 2;
  let at = from;
  while (at < last) {
    const end = text.indexOf('\r\n', at);
    if (end < 0 || end >= last + 1) return undefined;
    const colon = text.indexOf(':', at);
    if (colon <= at || colon > end) return undefined;
    const rawName = text.slice(at, colon);
    if (!TOKEN.test(rawName)) return undefined;
    const value = text.slice(colon + 1, end).trim();
    if (BAD_VALUE.test(value)) return undefined;
    fields.push({ name: rawName.toLowerCase(), value, lineStart: at, lineEnd: end });
    at = end + 2;
  }
  return fields;
}

/**
 * Parses a complete request head (`buf[start, end)` ends with its blank line). Undefined: not a
 * plain HTTP/1.0 or 1.1 request head this parser vouches for.
 */
export function parseRequestHead(buf: Buffer, start: number, end: number): RequestHead | undefined {
  if (end - start > MAX_HEAD_BYTES) return undefined;
  const text = buf.toString('latin1', start, end);
  const lineEnd = text.indexOf('\r\n');
  const sp1 = text.indexOf(' ');
  if (sp1 <= 0 || sp1 > lineEnd) return undefined;
  const sp2 = text.indexOf(' ', sp1 + 1);
  // Exactly "METHOD SP target SP HTTP/1.x".
  if (sp2 < 0 || lineEnd - sp2 !== 9 || !text.startsWith('HTTP/1.', sp2 + 1)) return undefined;
  const minorChar = text.charCodeAt(lineEnd - 1);
  if (minorChar !== 0x30 && minorChar !== 0x31) return undefined;
  const method = text.slice(0, sp1);
  const target = text.slice(sp1 + 1, sp2);
  if (!TOKEN.test(method) || !TARGET.test(target)) return undefined;
  const fields = parseFields(text, lineEnd + 2);
  if (fields === undefined) return undefined;
  return { method, target, minor: minorChar === 0x31 ? 1 : 0, text, lineEnd, fields };
}

/**
 * Parses a complete response head. Undefined: not an HTTP/1.x status line with plain field
 * lines (the fast path then fails the request rather than guess at the body's framing).
 */
export function parseResponseHead(buf: Buffer, start: number, end: number): ResponseHead | undefined {
  const text = buf.toString('latin1', start, end);
  const lineEnd = text.indexOf('\r\n');
  // "HTTP/1.x SSS[ reason]"
  if (lineEnd < 12 || !text.startsWith('HTTP/1.') || text.charCodeAt(8) !== 0x20) return undefined;
  const minorChar = text.charCodeAt(7);
  if (minorChar !== 0x30 && minorChar !== 0x31) return undefined;
  if (lineEnd > 12 && text.charCodeAt(12) !== 0x20) return undefined;
  const status = parseContentLength(text.slice(9, 12));
  if (status === undefined || status < 100) return undefined;
  if (text.slice(0, lineEnd).includes('\n')) return undefined;
  const fields = parseFields(text, lineEnd + 2);
  if (fields === undefined) return undefined;
  return { status, minor: minorChar === 0x31 ? 1 : 0, text, lineEnd, fields };
}

/** A Content-Length value: digits only, not absurdly long; undefined otherwise. */
export function parseContentLength(value: string): number | undefined {
  if (value.length === 0 || value.length > 15) return undefined;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return undefined;
  }
  return Number(value);
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
