// Two release builds of the same tree give byte-identical archives: built from two copies in
// folders of different names and depths, into different output folders, at different times, with
// a missing signer and --unsigned. By default one platform of each binary format (ELF, Mach-O, PE;
// .tar.gz and .zip) is built; KT_RELEASE_REPRO=all builds every platform (about twice as long).
// When the tree's build inputs are those krew-manifests/release.json was made from, the committed
// manifests must name exactly the archives built here.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildEpoch, inputsHash, type Provenance, type ReleaseRecord } from '../../../../plugins/release/build.ts';
import { sha256 } from '../../../../plugins/release/node-dist.ts';
import { PLATFORMS } from '../../../../plugins/release/platforms.ts';
import { snapshot } from '../../../../plugins/release/snapshot.ts';

const root = join(import.meta.dirname, '../../../..');
const node = join(root, 'node_modules/.bin/node');
const platforms = process.env.KT_RELEASE_REPRO === 'all' ? PLATFORMS.map((p) => p.id) : ['linux-amd64', 'darwin-arm64', 'windows-amd64'];
const tmp = mkdtempSync(join(tmpdir(), 'kt-repro-'));
const { epoch } = buildEpoch(root);

interface Build { src: string; out: string; rec: ReleaseRecord; seconds: number }
const builds: Build[] = [];

function build(src: string, out: string): Build {
  const t0 = performance.now();
  const r = spawnSync(node, [join(src, 'plugins/release/build.ts'), '--platforms', platforms.join(','), '--unsigned', '--rcodesign', join(tmp, 'no-such-rcodesign'), '--no-validate', '--out', out], {
    cwd: src,
    encoding: 'utf8',
    env: { ...process.env, SOURCE_DATE_EPOCH: String(epoch), RCODESIGN: '' },
    timeout: 900_000,
  });
  if (r.status !== 0) throw new Error(`the release build in ${src} failed:\n${r.stderr}`);
  return { src, out, rec: JSON.parse(readFileSync(join(out, 'release.json'), 'utf8')) as ReleaseRecord, seconds: (performance.now() - t0) / 1000 };
}

describe(`release builds of the same tree (${platforms.join(', ')})`, () => {
  beforeAll(() => {
    // Both copies are taken before either build, and must hold the same inputs (someone editing
    // the tree between the two copies would show here, not as a reproducibility failure).
    const a = join(tmp, 'a', 'src');
    const b = join(tmp, 'second-copy', 'deeper', 'src');
    snapshot(root, a);
    snapshot(root, b);
    const ha = inputsHash({}, a);
    if (inputsHash({}, b) !== ha) throw new Error('the tree changed while it was copied; run the test again');
    builds.push(build(a, join(tmp, 'out-a')));
    builds.push(build(b, join(tmp, 'elsewhere', 'out-b')));
    for (const x of builds) process.stderr.write(`repro: built ${platforms.length} platforms in ${x.seconds.toFixed(0)}s from ${x.src}\n`);
  }, 1_800_000);

  afterAll(() => rmSync(tmp, { recursive: true, force: true }));

  it('give byte-identical archives (sha256 of every one) and manifests', () => {
    const [a, b] = builds as [Build, Build];
    expect(a.rec.inputs).toBe(b.rec.inputs);
    expect(a.rec.files.sort()).toEqual(b.rec.files.sort());
    const archives = a.rec.files.filter((f) => /\.(tar\.gz|zip)$/.test(f));
    // One archive per plugin entry and platform.
    const plugins = readdirSync(join(root, 'plugins/cmd')).filter((f) => /^kt-.*\.ts$/.test(f)).length;
    expect(archives).toHaveLength(platforms.length * plugins);
    for (const f of a.rec.files) {
      expect(sha256(readFileSync(join(b.out, f))), f).toBe(sha256(readFileSync(join(a.out, f))));
    }
    for (const f of archives) expect(readFileSync(join(a.out, `${f}.sha256`), 'utf8')).toBe(`${sha256(readFileSync(join(a.out, f)))}  ${f}\n`);
  }, 300_000);

  it('date every archive entry SOURCE_DATE_EPOCH', () => {
    const a = builds[0]!;
    const tgz = a.rec.files.find((f) => f.endsWith('-linux-amd64.tar.gz'))!;
    const list = execFileSync('tar', ['--full-time', '-tvzf', join(a.out, tgz)], { encoding: 'utf8', env: { ...process.env, TZ: 'UTC' } }).trim().split('\n');
    const when = new Date(epoch * 1000).toISOString().replace('T', ' ').slice(0, 19);
    expect(list).toHaveLength(3);
    for (const l of list) expect(l).toContain(when);
  });

  it('leave the macOS binaries unsigned only because --unsigned said so', () => {
    for (const p of builds[0]!.rec.platforms) expect(p.signed, p.id).toBe(p.id.startsWith('darwin-') ? false : null);
  });

  it('name the archives krew-manifests/release.json names, when made from the same inputs', () => {
    const file = join(root, 'krew-manifests', 'release.json');
    if (!existsSync(file)) throw new Error('krew-manifests/release.json is missing: a full release writes it');
    const prov = JSON.parse(readFileSync(file, 'utf8')) as Provenance;
    const built = builds[0]!.rec;
    if (prov.inputs !== built.inputs) {
      // The code changed since the last release: the committed manifests name that release's
      // archives, which this tree no longer builds. A release refreshes them (--commit HEAD).
      process.stderr.write(`repro: krew-manifests/ were made from other build inputs (${prov.inputs.slice(0, 12)}, this tree ${built.inputs.slice(0, 12)}): not compared\n`);
      return;
    }
    for (const p of built.platforms) {
      const committed = prov.platforms.find((x) => x.id === p.id);
      expect(committed, p.id).toBeDefined();
      expect(p.archives.map((x) => ({ file: x.file, sha256: x.sha256 }))).toEqual(committed!.archives);
      for (const x of p.archives) expect(readFileSync(join(root, 'krew-manifests', `${x.plugin}.yaml`), 'utf8')).toContain(`sha256: "${x.sha256}"`);
    }
  });
});
