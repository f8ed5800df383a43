// Builds a release: for each platform, one standalone multi-call binary holding every kubectl
// plugin (plugins/cmd/kt-*.ts), packed per plugin into a krew archive (.tar.gz, .zip on Windows)
// with a .sha256 beside it, and a krew manifest per plugin, validated with validate-krew-manifest.
//
//   node plugins/release/build.ts [--platforms linux-amd64,...] [--url-base URL] [--out dist]
//
// Run with --help for every option. Output lands in dist/ (archives, .sha256 files,
// krew-manifests/, release.json); a build of every platform also refreshes krew-manifests/ in
// the repository. An unchanged second run does nothing.
//
// Two builds of the same inputs give the same bytes, wherever the checkout and the output are:
// archive entries carry SOURCE_DATE_EPOCH (default: the time of the last commit that changed the
// build inputs, so a commit that only refreshes krew-manifests/ keeps it), the single executables
// are made by `node --build-sea` from a folder-relative main script, and the stripped Node binary
// is cached per strip tool version. A build that cannot sign the macOS binaries fails unless
// --unsigned asks for unsigned ones.
import { execFile, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { availableParallelism, tmpdir } from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { promisify } from 'node:util';
import { parseArgs } from 'node:util';
import { DEFAULT_EPOCH, precompress, sourceDateEpoch, tarGz, zip, type ArchiveFile } from './archive.ts';
import { minify, multicallEntry, stubOptionalRequires } from './bundle-post.ts';
import { aboutFromHelp, caveats, description, krewManifest, shortDescription } from './manifest.ts';
import { baseBinary, ktCacheDir, sha256 } from './node-dist.ts';
import { archiveName, completeHelperName, hostPlatform, parsePlatforms, PLATFORMS, pluginBinName } from './platforms.ts';
import { snapshot } from './snapshot.ts';

const run = promisify(execFile);
const root = resolve(import.meta.dirname, '../..');
const pkgJson = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { version: string; devDependencies?: Record<string, string> };
export const RCODESIGN_VERSION = '0.29.0';
const DEFAULT_HOMEPAGE = 'https://github.com/kt-dev/kt';

const USAGE = `Builds the kt release: standalone plugin binaries, krew archives and manifests.

Usage: node plugins/release/build.ts [options]

Options:
  --platforms LIST    comma-separated, default all: ${PLATFORMS.map((p) => p.id).join(',')}
  --url-base URL      where the archives will be downloaded from (krew manifests' uri)
                      (default ${DEFAULT_HOMEPAGE}/releases/download/v<version>)
  --homepage URL      the manifests' homepage (default ${DEFAULT_HOMEPAGE})
  --out DIR           output folder (default dist)
  --force             build even if the output is up to date
  --no-validate       skip validate-krew-manifest (it is in the local cluster's BIN_DIR)
  --validate-port N   loopback port of the archive server used to validate installs (default: any)
  --rcodesign PATH    rcodesign for the macOS ad-hoc signatures (default: $RCODESIGN, the cache, PATH)
  --unsigned          leave the macOS binaries unsigned (without it, no rcodesign is an error)
  --commit REF        build that commit (from a copy of it), not the working tree; with every
                      platform, krew-manifests/ then names that commit's archives

Archive entries are dated SOURCE_DATE_EPOCH (default: the time of the last commit that changed
the build inputs), so two builds of the same inputs are byte-identical.
  -h, --help          this text`;

const log = (m: string): void => { process.stderr.write(`release: ${m}\n`); };
const warn = (m: string): void => { process.stderr.write(`\nrelease: WARNING: ${m}\n\n`); };
const mb = (n: number): string => `${(n / 1e6).toFixed(1)} MB`;

async function step<T>(what: string, fn: () => Promise<T> | T, times: Record<string, number>): Promise<T> {
  const t0 = performance.now();
  log(`${what} ...`);
  const r = await fn();
  const s = (performance.now() - t0) / 1000;
  times[what] = Math.round(s * 10) / 10;
  log(`${what}: done in ${s.toFixed(1)}s`);
  return r;
}

/** Runs fn over items, at most n at a time (injecting a blob keeps one core busy). */
async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<void>): Promise<void> {
  const queue = [...items];
  await Promise.all(Array.from({ length: Math.max(1, n) }, async () => {
    for (let item = queue.shift(); item !== undefined; item = queue.shift()) await fn(item);
  }));
}

/** The plugin entries, found by their file names. */
export function discoverPlugins(dir = join(root, 'plugins', 'cmd')): { plugin: string; file: string }[] {
  return readdirSync(dir)
    .filter((f) => /^kt-[a-z0-9-]+\.ts$/.test(f))
    .sort()
    .map((f) => ({ plugin: f.replace(/\.ts$/, ''), file: join(dir, f) }));
}

function walk(dir: string, out: string[] = []): string[] {
  if (!existsSync(dir)) return out;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (e.isFile()) out.push(p);
  }
  return out;
}

/** What the binaries and archives are made of (node_modules by package-lock.json). */
export const INPUTS = ['plugins', 'contract', 'runtime', 'package.json', 'package-lock.json', 'LICENSE', 'images/bundle.ts'];

/** A hash of everything that goes into the binaries and archives, and of the options. */
export function inputsHash(options: Record<string, unknown>, dir = root): string {
  const files = INPUTS.flatMap((i) => (existsSync(join(dir, i)) && statSync(join(dir, i)).isDirectory() ? walk(join(dir, i)) : [join(dir, i)]))
    .filter((f) => !f.includes(`${join('plugins', 'rbac')}`) && !f.includes(`${join('plugins', 'bin')}`))
    .sort();
  const h = createHash('sha256').update(JSON.stringify(options));
  for (const f of files) h.update(relative(dir, f)).update('\0').update(readFileSync(f)).update('\0');
  return h.digest('hex');
}

/**
 * The archives' entry time: SOURCE_DATE_EPOCH if set, else the time of the last commit that
 * changed the build inputs (not HEAD's: the commit that refreshes krew-manifests/ must not change
 * the archives it names), else 1980-01-01 outside a git checkout.
 */
export function buildEpoch(dir = root, env = process.env, commit = 'HEAD'): { epoch: number; from: string } {
  if (env.SOURCE_DATE_EPOCH !== undefined && env.SOURCE_DATE_EPOCH !== '') {
    if (!/^\d+$/.test(env.SOURCE_DATE_EPOCH)) throw new Error(`SOURCE_DATE_EPOCH must be seconds since 1970 (has "${env.SOURCE_DATE_EPOCH}")`);
    return { epoch: sourceDateEpoch(env), from: 'SOURCE_DATE_EPOCH' };
  }
  const r = spawnSync('git', ['-C', dir, 'log', '-1', '--format=%ct', commit, '--', ...INPUTS], { encoding: 'utf8' });
  const t = Number(r.stdout?.trim());
  if (r.status === 0 && Number.isInteger(t) && t > 0) return { epoch: Math.max(t, DEFAULT_EPOCH), from: 'the last commit of the build inputs' };
  return { epoch: DEFAULT_EPOCH, from: 'no git history (1980-01-01)' };
}

export interface ReleaseRecord {
  version: string;
  nodeVersion: string;
  inputs: string;
  sourceDateEpoch: number;
  validated: boolean;
  urlBase: string;
  platforms: { id: string; binaryBytes: number; signed: boolean | null; stripped: string | null; archives: { plugin: string; file: string; bytes: number; sha256: string }[] }[];
  manifests: string[];
  files: string[];
  seconds: Record<string, number>;
}

/** krew-manifests/release.json: what the manifests kept in the repository were built from. */
export interface Provenance {
  note: string;
  version: string;
  nodeVersion: string;
  inputs: string;
  sourceDateEpoch: number;
  urlBase: string;
  unsigned: boolean;
  platforms: { id: string; signed: boolean | null; stripped: string | null; archives: { file: string; sha256: string }[] }[];
}

/** The options a release's inputs hash covers besides the files. */
export function releaseOptions(o: { urlBase: string; homepage: string; nodeVersion: string; epoch: number; unsigned: boolean; plugins: string[] }): Record<string, unknown> {
  return { urlBase: o.urlBase, homepage: o.homepage, nodeVersion: o.nodeVersion, epoch: o.epoch, unsigned: o.unsigned, plugins: o.plugins };
}

/** Whether the build inputs differ from HEAD (false outside a git checkout: a copy is what it is). */
function inputsDirty(dir = root): boolean {
  const r = spawnSync('git', ['-C', dir, 'status', '--porcelain', '--', ...INPUTS], { encoding: 'utf8' });
  return r.status === 0 && r.stdout.trim() !== '';
}

/** Builds the release of a commit: from a copy of it, so the working tree's edits do not count. */
async function releaseCommit(commit: string, argv: string[], out: string, full: boolean): Promise<ReleaseRecord> {
  const sha = spawnSync('git', ['-C', root, 'rev-parse', '--verify', `${commit}^{commit}`], { encoding: 'utf8' });
  if (sha.status !== 0) throw new Error(`--commit ${commit} names no commit of this repository`);
  const src = mkdtempSync(join(tmpdir(), 'kt-release-src-'));
  try {
    log(`building commit ${sha.stdout.trim().slice(0, 12)} from a copy of it`);
    snapshot(root, src, sha.stdout.trim());
    const env = { ...process.env, SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH || String(buildEpoch(root, {}, sha.stdout.trim()).epoch) };
    const rest = argv.filter((a, i) => !/^--(commit|out)(=|$)/.test(a) && !/^--(commit|out)$/.test(argv[i - 1] ?? ''));
    const r = spawnSync(process.execPath, [join(src, 'plugins/release/build.ts'), ...rest, '--out', out], { cwd: src, env, stdio: 'inherit' });
    if (r.status !== 0) throw new Error(`the build of ${commit} failed (above)`);
    if (full && existsSync(join(src, 'krew-manifests', 'release.json'))) {
      for (const f of readdirSync(join(src, 'krew-manifests'))) copyFileSync(join(src, 'krew-manifests', f), join(root, 'krew-manifests', f));
      log(`krew-manifests/ now names the archives of ${commit}`);
    }
    return JSON.parse(readFileSync(join(out, 'release.json'), 'utf8')) as ReleaseRecord;
  } finally {
    rmSync(src, { recursive: true, force: true });
  }
}

/** The release in out, if it was built from the same inputs for (at least) the platforms asked for. */
function upToDate(out: string, inputs: string, platformIds: string[], validate: boolean): ReleaseRecord | undefined {
  try {
    const rec = JSON.parse(readFileSync(join(out, 'release.json'), 'utf8')) as ReleaseRecord;
    if (rec.inputs !== inputs || (validate && !rec.validated)) return undefined;
    if (!platformIds.every((id) => rec.platforms.some((p) => p.id === id))) return undefined;
    for (const f of rec.files) if (!existsSync(join(out, f))) return undefined;
    for (const p of rec.platforms) for (const a of p.archives) if (sha256(readFileSync(join(out, a.file))) !== a.sha256) return undefined;
    return rec;
  } catch {
    return undefined;
  }
}

function findTool(name: string, explicit: string | undefined, candidates: string[]): string | undefined {
  if (explicit) return existsSync(explicit) ? explicit : undefined;
  for (const c of candidates) if (existsSync(c)) return c;
  const r = spawnSync(process.platform === 'win32' ? 'where' : 'which', [name], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim().split('\n')[0] : undefined;
}

function clusterBinDir(): string | undefined {
  const r = spawnSync('bash', ['-c', `. '${join(root, 'test/cluster/versions.sh')}' && printf %s "$BIN_DIR"`], { encoding: 'utf8' });
  return r.status === 0 && r.stdout ? r.stdout : undefined;
}

function windowsHelper(plugin: string): string {
  const bin = pluginBinName(plugin, { exe: '.exe' });
  return [
    '@echo off',
    `rem kubectl 1.26+ completes "kubectl ${plugin} ..." by running this helper from PATH (cobra's`,
    'rem __complete protocol); it asks the plugin beside it, else the one on PATH.',
    'setlocal',
    `set "KT_PLUGIN=%~dp0${bin}"`,
    `if not exist "%KT_PLUGIN%" set "KT_PLUGIN=${bin}"`,
    '"%KT_PLUGIN%" __complete %*',
    '',
  ].join('\r\n');
}

/** Serves the files of dir on loopback, for validate-krew-manifest's installs. */
async function serve(dir: string, port: number): Promise<{ server: Server; base: string }> {
  const server = createServer((req, res) => {
    const file = join(dir, basename(decodeURIComponent((req.url ?? '/').split('?')[0]!)));
    if (!existsSync(file) || !statSync(file).isFile()) { res.writeHead(404).end(); return; }
    res.writeHead(200, { 'content-length': statSync(file).size });
    res.end(readFileSync(file));
  });
  await new Promise<void>((ok, fail) => { server.once('error', fail); server.listen(port, '127.0.0.1', ok); });
  const addr = server.address();
  return { server, base: `http://127.0.0.1:${typeof addr === 'object' && addr ? addr.port : port}` };
}

async function validateManifests(manifests: string[], out: string, validator: string, binDir: string, port: number): Promise<void> {
  // validate-krew-manifest installs every platform with `kubectl krew install`: kubectl and the
  // krew plugin must be on its PATH, and the archives reachable at their uri (served on loopback).
  const tools = mkdtempSync(join(tmpdir(), 'kt-krew-validate-'));
  const { server, base } = await serve(out, port);
  try {
    symlinkSync(join(binDir, 'kubectl'), join(tools, 'kubectl'));
    symlinkSync(join(binDir, 'krew'), join(tools, 'kubectl-krew'));
    const env = { ...process.env, PATH: `${tools}:${process.env.PATH ?? ''}` };
    for (const m of manifests) {
      const text = readFileSync(m, 'utf8');
      const check = async (file: string, args: string[]): Promise<void> => {
        try {
          const r = await run(validator, ['-manifest', file, ...args], { env, maxBuffer: 16 << 20 });
          const warnings = (r.stderr + r.stdout).split('\n').filter((l) => /^W\d{4}|exceeds/.test(l));
          if (warnings.length) throw Object.assign(new Error('warnings'), { stderr: warnings.join('\n') });
        } catch (e) {
          throw new Error(`validate-krew-manifest refused ${relative(root, m)}${args.length ? ` (${args.join(' ')})` : ''}:\n${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`, { cause: e });
        }
      };
      // The manifest as published: structure, selectors, line lengths.
      await check(m, ['-skip-install']);
      // The same manifest pointing at the local archives: every platform really installs.
      const local = join(tools, basename(m));
      writeFileSync(local, text.replace(/uri: "[^"]*\/([^"/]+)"/g, (_a, f: string) => `uri: "${base}/${f}"`));
      await check(local, []);
    }
  } finally {
    server.close();
    rmSync(tools, { recursive: true, force: true });
  }
}

export async function release(argv: string[]): Promise<ReleaseRecord> {
  const { values } = parseArgs({
    args: argv,
    options: {
      platforms: { type: 'string' },
      'url-base': { type: 'string' },
      homepage: { type: 'string' },
      out: { type: 'string' },
      force: { type: 'boolean' },
      'no-validate': { type: 'boolean' },
      'validate-port': { type: 'string' },
      rcodesign: { type: 'string' },
      unsigned: { type: 'boolean' },
      commit: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const t0 = performance.now();
  const times: Record<string, number> = {};
  const version = pkgJson.version;
  const nodeVersion = (pkgJson.devDependencies?.node ?? '').replace(/^[^\d]*/, '');
  if (!/^\d+\.\d+\.\d+$/.test(nodeVersion)) throw new Error(`package.json must pin an exact Node version in devDependencies.node (has "${pkgJson.devDependencies?.node}")`);
  // The SEA blob must be made by the very Node version that will run it.
  if (process.version !== `v${nodeVersion}`) throw new Error(`run the release build on the pinned Node ${nodeVersion} (PATH=$PWD/node_modules/.bin:$PATH), not ${process.version}`);
  const platforms = parsePlatforms(values.platforms);
  const out = resolve(values.out ?? join(root, 'dist'));
  if (values.commit) return releaseCommit(values.commit, argv, out, platforms.length === PLATFORMS.length);
  const urlBase = (values['url-base'] ?? `${DEFAULT_HOMEPAGE}/releases/download/v${version}`).replace(/\/+$/, '');
  const homepage = values.homepage ?? DEFAULT_HOMEPAGE;
  const plugins = discoverPlugins();
  if (plugins.length === 0) throw new Error('no plugin entries (plugins/cmd/kt-*.ts)');
  const cache = ktCacheDir();
  const { epoch, from: epochFrom } = buildEpoch();
  const unsigned = values.unsigned === true;
  const inputs = inputsHash(releaseOptions({ urlBase, homepage, nodeVersion, epoch, unsigned, plugins: plugins.map((p) => p.plugin) }));

  // Before any work: the macOS binaries are signed, or the release says it wants them unsigned.
  const toSign = unsigned ? [] : platforms.filter((p) => p.sign);
  const rcodesign = toSign.length > 0 ? findTool('rcodesign', values.rcodesign ?? process.env.RCODESIGN, [join(cache, 'rcodesign', RCODESIGN_VERSION, 'bin', 'rcodesign')]) : undefined;
  if (toSign.length > 0 && !rcodesign) {
    throw new Error(`cannot sign the ${toSign.map((p) => p.id).join(' and ')} binaries: rcodesign ${values.rcodesign ?? process.env.RCODESIGN ? `is not at ${values.rcodesign ?? process.env.RCODESIGN}` : 'was found neither in the cache nor on PATH'} (install it with \`cargo install apple-codesign --version ${RCODESIGN_VERSION} --locked --no-default-features --bin rcodesign --root ~/.cache/kt/rcodesign/${RCODESIGN_VERSION}\`, point --rcodesign at it, or pass --unsigned for binaries Apple silicon refuses to run)`);
  }

  const previous = upToDate(out, inputs, platforms.map((p) => p.id), !values['no-validate']);
  if (previous && !values.force) {
    log(`${relative(process.cwd(), out) || '.'} is up to date (v${version}, ${previous.platforms.map((p) => p.id).join(', ')}); --force rebuilds`);
    return previous;
  }
  // Remove what an earlier build wrote (and only that).
  try {
    const old = JSON.parse(readFileSync(join(out, 'release.json'), 'utf8')) as ReleaseRecord;
    for (const f of old.files) rmSync(join(out, f), { force: true });
  } catch { /* none */ }
  rmSync(join(out, 'release.json'), { force: true });
  const work = join(out, '.build');
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  log(`v${version}: ${plugins.map((p) => p.plugin).join(', ')} for ${platforms.map((p) => p.id).join(', ')} on Node ${nodeVersion}`);
  log(`archive entries dated ${new Date(epoch * 1000).toISOString()} (SOURCE_DATE_EPOCH=${epoch}, from ${epochFrom})`);

  // 1. One bundle holding every plugin.
  const bundle = await step('bundle', async () => {
    const entry = join(work, 'entry.ts');
    writeFileSync(entry, multicallEntry(join(root, 'plugins/release/multicall.ts'), plugins));
    const raw = join(work, 'bundle.cjs');
    await run(process.execPath, [join(root, 'images/bundle.ts'), entry, raw], { cwd: root, maxBuffer: 16 << 20 });
    const { code, stubbed } = stubOptionalRequires(readFileSync(raw, 'utf8'));
    log(`optional modules stubbed (pure-JS fallbacks used): ${stubbed.join(', ') || 'none'}`);
    const file = join(work, 'kt.cjs');
    writeFileSync(file, minify(code));
    log(`bundle: ${mb(statSync(raw).size)} -> ${mb(statSync(file).size)} minified`);
    return file;
  }, times);

  // What each plugin says about itself, for the manifests; also proves the bundle loads.
  const about = new Map<string, { summary: string; usage: string }>();
  for (const { plugin } of plugins) {
    const r = spawnSync(process.execPath, [bundle, plugin, '--help'], { encoding: 'utf8', env: { ...process.env, KT_CONFIG: '' } });
    if (r.status !== 0) throw new Error(`the bundle does not run: ${plugin} --help exited ${r.status}: ${r.stderr}`);
    about.set(plugin, aboutFromHelp(plugin, r.stdout));
  }

  // 2. The base Node binaries.
  const bases = new Map<string, { path: string; stripped: string | undefined }>();
  await step('node binaries', async () => {
    for (const p of platforms) {
      const base = await baseBinary(p, nodeVersion, cache, warn);
      bases.set(p.id, { path: base.path, stripped: base.stripped });
      log(`  ${p.id}: ${p.nodePackage}@${nodeVersion} ${mb(base.data.length)}${base.stripped ? ` (stripped by ${base.stripped})` : ''}`);
    }
  }, times);

  // 3. One single executable per platform: the official binary with the bundle injected, by the
  // pinned Node itself (it writes ELF, Mach-O and PE alike). The main script is named relative to
  // the work folder, so no path of this build ends up in the blob.
  const binaries = new Map<string, string>();
  await step('single executables (node --build-sea)', () => pool(platforms, Math.min(2, availableParallelism()), async (p) => {
    const output = join(p.id, `kt${p.exe}`);
    mkdirSync(join(work, p.id), { recursive: true });
    const config = join(work, p.id, 'sea-config.json');
    writeFileSync(config, JSON.stringify({
      main: basename(bundle),
      executable: bases.get(p.id)!.path,
      output,
      disableExperimentalSEAWarning: true,
      // Node scans its command line for options such as --env-file before the app runs; a leading
      // `--` ends its options, so a plugin's own --env-file (kt-exchange's) reaches the plugin.
      execArgv: ['--'],
      useSnapshot: false,
      // V8's code cache would be made for the host's CPU and is not byte-stable.
      useCodeCache: false,
    }));
    try {
      await run(process.execPath, ['--build-sea', config], { cwd: work, maxBuffer: 64 << 20 });
    } catch (e) {
      throw new Error(`node --build-sea could not build ${p.id}: ${((e as { stderr?: string }).stderr || (e as Error).message).trim()}`, { cause: e });
    }
    if (!existsSync(join(work, output))) throw new Error(`node --build-sea wrote no binary for ${p.id} at ${join(work, output)}`);
    binaries.set(p.id, join(work, output));
    log(`  ${p.id}: ${mb(statSync(join(work, output)).size)}`);
  }), times);

  // 4. macOS binaries carry an ad-hoc signature (arm64 Macs refuse to run anything unsigned).
  const signed = new Map<string, boolean>();
  if (toSign.length > 0 && rcodesign) {
    await step('macOS ad-hoc signatures', async () => {
      for (const p of toSign) {
        const bin = binaries.get(p.id)!;
        try {
          await run(rcodesign, ['sign', '--binary-identifier', 'dev.kt.kt', bin], { maxBuffer: 16 << 20 });
          // (rcodesign's own `verify` says it is unreliable: read the signature back instead.)
          const info = (await run(rcodesign, ['print-signature-info', bin], { maxBuffer: 64 << 20 })).stdout;
          if (!/flags: CodeSignatureFlags\(ADHOC\)/.test(info) || !/identifier: dev\.kt\.kt/.test(info)) throw new Error(`unexpected signature:\n${info.slice(0, 2000)}`);
        } catch (e) {
          throw new Error(`rcodesign could not sign the ${p.id} binary: ${((e as { stderr?: string }).stderr ?? (e as Error).message).trim()}`, { cause: e });
        }
        signed.set(p.id, true);
        log(`  ${p.id}: ad-hoc signed (rcodesign ${RCODESIGN_VERSION}; no hardened runtime, so V8's JIT needs no entitlements)`);
      }
    }, times);
  }

  // 5. The binary for this machine must run quietly (no single-executable warning), under each
  // name it is installed as.
  const host = hostPlatform();
  if (host && binaries.has(host.id)) {
    const bin = binaries.get(host.id)!;
    const asName = (name: string): string => {
      const link = join(work, host.id, name);
      rmSync(link, { force: true });
      symlinkSync(basename(bin), link);
      return link;
    };
    const env = { ...process.env, KT_CONFIG: '' };
    const checks: [string, string[], RegExp][] = [
      [bin, ['kt-status', '--version'], new RegExp(`^kt-status ${version.replaceAll('.', '\\.')}\\n`)],
      [asName(pluginBinName('kt-status', host)), ['--version'], new RegExp(`^kt-status ${version.replaceAll('.', '\\.')}\\n`)],
      [asName(`kubectl_complete-${plugins[0]!.plugin.replaceAll('-', '_')}`), ['--he'], /^--help\t.*\n:4\n$/m],
    ];
    for (const [file, args, want] of checks) {
      const r = spawnSync(file, args, { encoding: 'utf8', env });
      if (r.status !== 0 || !want.test(r.stdout) || r.stderr !== '') {
        throw new Error(`the ${host.id} binary does not run cleanly as ${basename(file)} ${args.join(' ')}: exit ${r.status}, stdout ${JSON.stringify(r.stdout)}, stderr ${JSON.stringify(r.stderr)}`);
      }
    }
    log(`smoke test: the ${host.id} binary runs as kt, ${pluginBinName('kt-status', host)} and a completion helper`);
  }

  // 6. One archive per plugin and platform, with its sha256.
  const license = readFileSync(join(root, 'LICENSE'));
  const helper = readFileSync(join(root, 'plugins/release/kubectl_complete-helper.sh'));
  const files: string[] = [];
  const record: ReleaseRecord['platforms'] = [];
  await step('archives', async () => {
    const data = new Map(platforms.map((p) => [p.id, readFileSync(binaries.get(p.id)!)]));
    await Promise.all(platforms.map((p) => precompress(data.get(p.id)!, p.archive)));
    for (const p of platforms) {
      const bin = data.get(p.id)!;
      const archives: ReleaseRecord['platforms'][number]['archives'] = [];
      for (const { plugin } of plugins) {
        const entries: ArchiveFile[] = [
          { name: pluginBinName(plugin, p), mode: 0o755, data: bin },
          { name: completeHelperName(plugin, p), mode: 0o755, data: p.os === 'windows' ? Buffer.from(windowsHelper(plugin)) : helper },
          { name: 'LICENSE', mode: 0o644, data: license },
        ];
        const name = archiveName(plugin, version, p);
        const bytes = p.archive === 'zip' ? zip(entries, epoch) : tarGz(entries, epoch);
        const sum = sha256(bytes);
        writeFileSync(join(out, name), bytes);
        writeFileSync(join(out, `${name}.sha256`), `${sum}  ${name}\n`);
        files.push(name, `${name}.sha256`);
        archives.push({ plugin, file: name, bytes: bytes.length, sha256: sum });
      }
      record.push({ id: p.id, binaryBytes: bin.length, signed: p.sign ? (signed.get(p.id) ?? false) : null, stripped: bases.get(p.id)?.stripped ?? null, archives });
      log(`  ${p.id}: ${archives.length} archives, ${mb(archives[0]!.bytes)} each`);
    }
  }, times);

  // 7. krew manifests.
  const manifestDir = join(out, 'krew-manifests');
  mkdirSync(manifestDir, { recursive: true });
  const manifests: string[] = [];
  const all = plugins.map((p) => p.plugin);
  for (const { plugin } of plugins) {
    const a = about.get(plugin)!;
    const text = krewManifest({
      plugin,
      version,
      homepage,
      shortDescription: shortDescription(plugin, a.summary),
      description: description(plugin, a.summary, all),
      caveats: caveats(plugin, a.usage),
      platforms: record.map((r) => {
        const arc = r.archives.find((x) => x.plugin === plugin)!;
        return { platform: PLATFORMS.find((x) => x.id === r.id)!, uri: `${urlBase}/${arc.file}`, sha256: arc.sha256 };
      }),
    });
    const file = join(manifestDir, `${plugin}.yaml`);
    writeFileSync(file, text);
    files.push(relative(out, file));
    manifests.push(file);
  }

  // 8. Validation, with krew's own validator.
  if (!values['no-validate']) {
    const binDir = clusterBinDir();
    const validator = findTool('validate-krew-manifest', process.env.KT_VALIDATE_KREW_MANIFEST, binDir ? [join(binDir, 'validate-krew-manifest')] : []);
    if (!validator || !binDir || !existsSync(join(binDir, 'krew')) || !existsSync(join(binDir, 'kubectl'))) {
      throw new Error(`validate-krew-manifest, krew and kubectl are needed to validate the manifests (looked in ${binDir ?? 'BIN_DIR of test/cluster/versions.sh'}); build them with 'bash test/cluster/build-binaries.sh' or pass --no-validate`);
    }
    await step('validate-krew-manifest', () => validateManifests(manifests, out, validator, binDir, Number(values['validate-port'] ?? 0)), times);
  }

  // 9. A full, validated release of committed inputs also refreshes the manifests kept in the
  // repository (with uncommitted inputs it would name archives no commit reproduces).
  const dirty = inputsDirty();
  if (platforms.length === PLATFORMS.length && !values['no-validate'] && !dirty) {
    const repoDir = join(root, 'krew-manifests');
    mkdirSync(repoDir, { recursive: true });
    for (const m of manifests) copyFileSync(m, join(repoDir, basename(m)));
    // What the manifests promise: the build inputs they were made from; a build of the same
    // inputs (same hash) reproduces every archive they name, byte for byte.
    const provenance: Provenance = {
      note: 'Written by plugins/release/build.ts. A release of build inputs with this hash (npm run release, same options) reproduces every archive these manifests name, byte for byte.',
      version, nodeVersion, inputs, sourceDateEpoch: epoch, urlBase, unsigned,
      platforms: record.map((r) => ({ id: r.id, signed: r.signed, stripped: r.stripped, archives: r.archives.map((a) => ({ file: a.file, sha256: a.sha256 })) })),
    };
    writeFileSync(join(repoDir, 'release.json'), `${JSON.stringify(provenance, null, 2)}\n`);
    log(`krew-manifests/: ${manifests.map((m) => basename(m)).join(', ')}, release.json (uri base ${urlBase})`);
  } else {
    const why = platforms.length < PLATFORMS.length ? `a partial release (${platforms.length} of ${PLATFORMS.length} platforms)` : values['no-validate'] ? 'not validated' : 'the build inputs have uncommitted changes (--commit HEAD builds the last commit)';
    log(`${why}: krew-manifests/ in the repository left as it is; see ${relative(process.cwd(), manifestDir)}`);
  }

  rmSync(work, { recursive: true, force: true });
  times.total = Math.round((performance.now() - t0) / 100) / 10;
  const rec: ReleaseRecord = { version, nodeVersion, inputs, sourceDateEpoch: epoch, validated: !values['no-validate'], urlBase, platforms: record, manifests: manifests.map((m) => relative(out, m)), files, seconds: times };
  writeFileSync(join(out, 'release.json'), `${JSON.stringify(rec, null, 2)}\n`);

  process.stderr.write('\nplatform        binary     archive (each)  signed\n');
  for (const r of record) {
    process.stderr.write(`${r.id.padEnd(15)} ${mb(r.binaryBytes).padStart(9)}  ${mb(r.archives[0]!.bytes).padStart(9)}       ${r.signed === null ? '-' : r.signed ? 'ad-hoc' : 'NO'}\n`);
  }
  log(`built in ${times.total}s: ${files.length} files in ${relative(process.cwd(), out) || '.'}`);
  for (const r of record) if (r.signed === false) warn(`${r.id} is NOT SIGNED (--unsigned)${r.id.endsWith('arm64') ? ': Apple silicon refuses to run it' : ''}`);
  return rec;
}

if (import.meta.main) {
  release(process.argv.slice(2)).catch((e: unknown) => {
    process.stderr.write(`\nrelease: FAILED: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
