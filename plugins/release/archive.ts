// Deterministic .tar.gz and .zip writers for the release archives: regular files only (krew
// refuses links), fixed owner and times, so the same inputs give the same bytes and sha256.
//
// Every plugin's archive for a platform holds the same ~100 MB binary under another name, so its
// compressed form is computed once and reused: in a zip each entry is compressed on its own
// anyway, and a .tar.gz is written as several gzip members (RFC 1952 allows a file to be a series
// of members; gzip, Go's compress/gzip as krew uses it, libarchive and Python all read them).
import { promisify } from 'node:util';
import { crc32, deflateRaw, deflateRawSync, gunzipSync, gzip, gzipSync, constants as zc } from 'node:zlib';

export interface ArchiveFile {
  name: string;
  /** Unix permission bits, e.g. 0o755. */
  mode: number;
  data: Buffer;
}

/** 1980-01-01T00:00:00Z: the earliest time a zip can hold; used unless SOURCE_DATE_EPOCH is set. */
export const DEFAULT_EPOCH = 315532800;

/** SOURCE_DATE_EPOCH (reproducible-builds.org) if set, clamped to what a zip can hold. */
export function sourceDateEpoch(env = process.env): number {
  const v = Number(env.SOURCE_DATE_EPOCH);
  return Number.isInteger(v) && v >= DEFAULT_EPOCH ? v : DEFAULT_EPOCH;
}

/**
 * zlib writes the gzip header's OS byte from the platform it was compiled for (3 on Unix, 10 on
 * Windows) and leaves MTIME 0: pin both, so an archive built on Windows has the same bytes.
 */
function gzipHeader(member: Buffer): Buffer {
  member.writeUInt32LE(0, 4);
  member[9] = 3;
  return member;
}

/** Compression level: the best for release archives, the fastest for caches that stay local. */
export type Level = 'best' | 'fast';
const zlibLevel = (l: Level): { level: number } => ({ level: l === 'best' ? zc.Z_BEST_COMPRESSION : zc.Z_BEST_SPEED });
const tarMembers = { best: new WeakMap<Buffer, Buffer>(), fast: new WeakMap<Buffer, Buffer>() };
const deflated = { best: new WeakMap<Buffer, { raw: Buffer; crc: number }>(), fast: new WeakMap<Buffer, { raw: Buffer; crc: number }>() };

function octal(buf: Buffer, off: number, len: number, value: number): void {
  buf.write(value.toString(8).padStart(len - 1, '0') + '\0', off, len, 'ascii');
}

function tarHeader(f: ArchiveFile, mtime: number): Buffer {
  const h = Buffer.alloc(512);
  const name = Buffer.from(f.name, 'utf8');
  if (name.length > 100) throw new Error(`archive entry name too long: ${f.name}`);
  name.copy(h, 0);
  octal(h, 100, 8, f.mode & 0o7777);
  octal(h, 108, 8, 0);
  octal(h, 116, 8, 0);
  octal(h, 124, 12, f.data.length);
  octal(h, 136, 12, mtime);
  h.fill(' ', 148, 156);
  h.write('0', 156, 'ascii'); // regular file
  h.write('ustar\0' + '00', 257, 'ascii');
  h.write('root', 265, 'ascii');
  h.write('root', 297, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(sum.toString(8).padStart(6, '0') + '\0 ', 148, 8, 'ascii');
  return h;
}

/** The gzip member holding a file's data padded to the tar block size, computed once per buffer. */
function tarDataMember(data: Buffer, level: Level): Buffer {
  let m = tarMembers[level].get(data);
  if (!m) {
    const pad = (512 - (data.length % 512)) % 512;
    m = gzipHeader(gzipSync(pad ? Buffer.concat([data, Buffer.alloc(pad)]) : data, zlibLevel(level)));
    tarMembers[level].set(data, m);
  }
  return m;
}

/**
 * Compresses a file's data for an archive kind ahead of time, off the main thread, so that several
 * big files compress in parallel; tarGz() and zip() then find it done.
 */
export async function precompress(data: Buffer, kind: 'tar.gz' | 'zip', level: Level = 'best'): Promise<void> {
  if (kind === 'tar.gz') {
    if (tarMembers[level].has(data)) return;
    const pad = (512 - (data.length % 512)) % 512;
    tarMembers[level].set(data, gzipHeader(await promisify(gzip)(pad ? Buffer.concat([data, Buffer.alloc(pad)]) : data, zlibLevel(level))));
  } else {
    if (deflated[level].has(data)) return;
    deflated[level].set(data, { raw: await promisify(deflateRaw)(data, zlibLevel(level)), crc: crc32(data) });
  }
}

export function tarGz(files: ArchiveFile[], mtime = sourceDateEpoch(), level: Level = 'best'): Buffer {
  const parts: Buffer[] = [];
  for (const f of files) {
    parts.push(gzipHeader(gzipSync(tarHeader(f, mtime), zlibLevel(level))));
    if (f.data.length > 0) parts.push(tarDataMember(f.data, level));
  }
  parts.push(gzipHeader(gzipSync(Buffer.alloc(1024), zlibLevel(level))));
  return Buffer.concat(parts);
}

function dosTime(epoch: number): { time: number; date: number } {
  const d = new Date(epoch * 1000);
  return {
    time: (d.getUTCHours() << 11) | (d.getUTCMinutes() << 5) | Math.floor(d.getUTCSeconds() / 2),
    date: ((d.getUTCFullYear() - 1980) << 9) | ((d.getUTCMonth() + 1) << 5) | d.getUTCDate(),
  };
}

export function zip(files: ArchiveFile[], mtime = sourceDateEpoch(), level: Level = 'best'): Buffer {
  const { time, date } = dosTime(mtime);
  const locals: Buffer[] = [];
  const central: Buffer[] = [];
  let offset = 0;
  for (const f of files) {
    let d = deflated[level].get(f.data);
    if (!d) {
      d = { raw: deflateRawSync(f.data, zlibLevel(level)), crc: crc32(f.data) };
      deflated[level].set(f.data, d);
    }
    const name = Buffer.from(f.name, 'utf8');
    if (f.data.length >= 0xffffffff || offset >= 0xffffffff) throw new Error('archive too large for a zip without zip64');
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed: 2.0 (deflate)
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8); // deflate
    local.writeUInt16LE(time, 10);
    local.writeUInt16LE(date, 12);
    local.writeUInt32LE(d.crc, 14);
    local.writeUInt32LE(d.raw.length, 18);
    local.writeUInt32LE(f.data.length, 22);
    local.writeUInt16LE(name.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, name, d.raw);
    const c = Buffer.alloc(46);
    c.writeUInt32LE(0x02014b50, 0);
    c.writeUInt16LE((3 << 8) | 20, 4); // made by: Unix, 2.0 (keeps the mode bits)
    c.writeUInt16LE(20, 6);
    c.writeUInt16LE(0x0800, 8);
    c.writeUInt16LE(8, 10);
    c.writeUInt16LE(time, 12);
    c.writeUInt16LE(date, 14);
    c.writeUInt32LE(d.crc, 16);
    c.writeUInt32LE(d.raw.length, 20);
    c.writeUInt32LE(f.data.length, 24);
    c.writeUInt16LE(name.length, 28);
    c.writeUInt32LE(((0o100000 | (f.mode & 0o7777)) << 16) >>> 0, 38); // regular file + mode
    c.writeUInt32LE(offset, 42);
    central.push(c, name);
    offset += 30 + name.length + d.raw.length;
  }
  const cd = Buffer.concat(central);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(files.length, 8);
  end.writeUInt16LE(files.length, 10);
  end.writeUInt32LE(cd.length, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, cd, end]);
}

/** Reads one regular file out of a .tar.gz (ustar, as npm packs), or undefined if absent. */
export function readTarGzEntry(tgz: Buffer, path: string): { data: Buffer; mode: number } | undefined {
  const tar = gunzipSync(tgz, { maxOutputLength: 2 ** 32 });
  let off = 0;
  while (off + 512 <= tar.length) {
    const h = tar.subarray(off, off + 512);
    if (h.every((b) => b === 0)) break;
    const str = (a: number, n: number): string => h.toString('utf8', a, a + n).replace(/\0.*$/s, '');
    const size = parseInt(str(124, 12).trim() || '0', 8);
    const prefix = str(345, 155);
    const name = prefix ? `${prefix}/${str(0, 100)}` : str(0, 100);
    const type = str(156, 1);
    if ((type === '0' || type === '') && name === path) {
      return { data: Buffer.from(tar.subarray(off + 512, off + 512 + size)), mode: parseInt(str(100, 8).trim() || '644', 8) };
    }
    off += 512 + Math.ceil(size / 512) * 512;
  }
  return undefined;
}
