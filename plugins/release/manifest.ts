// krew plugin manifests, generated from the built archives: one per plugin, every platform with
// its archive's URL and real sha256.
import { completeHelperName, pluginBinName, type Platform } from './platforms.ts';

export interface ManifestPlatform {
  platform: Platform;
  uri: string;
  sha256: string;
}

export interface ManifestInput {
  plugin: string;
  version: string;
  homepage: string;
  shortDescription: string;
  description: string;
  caveats?: string;
  platforms: ManifestPlatform[];
}

/** Short descriptions for krew's list (kept short, as the krew index asks); others use the summary. */
const SHORT: Record<string, string> = {
  'kt-connect': 'Reach cluster Services and pods from your machine',
  'kt-exchange': "Send all of a Service's traffic to your machine",
  'kt-mesh': 'Send header-tagged requests of a Service to you',
  'kt-preview': 'Publish a local process as a cluster Service',
  'kt-status': 'List kt sessions and their health',
  'kt-clean': 'Remove what crashed kt sessions left behind',
  'kt-dashboard': 'See exchanges, meshes and stale sessions live in a browser',
};

export function shortDescription(plugin: string, summary: string): string {
  if (SHORT[plugin]) return SHORT[plugin];
  const first = summary.split(/[;:,.] /)[0] ?? summary;
  return first.length <= 60 ? first : `${first.slice(0, 57)}...`;
}

/** Wraps lines at width (krew asks for at most 80); an indented line continues indented by two more. */
export function wrap(text: string, width = 80): string {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    if (line.length <= width) {
      out.push(line);
      continue;
    }
    const indent = /^ */.exec(line)![0];
    const next = indent ? `${indent}  ` : '';
    let cur = indent;
    for (const word of line.slice(indent.length).split(' ')) {
      if (cur.trim() && cur.length + 1 + word.length > width) {
        out.push(cur);
        cur = next + word;
      } else {
        cur = cur.trim() ? `${cur} ${word}` : cur + word;
      }
    }
    if (cur.trim()) out.push(cur);
  }
  return out.join('\n');
}

/**
 * The summary and usage line of a plugin's --help: the summary is its first line that is not a
 * usage line; the usage is the line after a "Usage:" heading, or what follows "Usage:" on its line.
 */
export function aboutFromHelp(plugin: string, help: string): { summary: string; usage: string } {
  const lines = help.split('\n').map((l) => l.trim());
  let usage: string | undefined;
  const at = lines.findIndex((l) => /^usage:/i.test(l));
  if (at >= 0) usage = lines[at]!.replace(/^usage:\s*/i, '') || lines.slice(at + 1).find((l) => l !== '');
  usage ??= lines.find((l) => l.startsWith(`kubectl ${plugin}`));
  const summary = lines.find((l, i) => l !== '' && i !== at && l !== usage && !/^usage:/i.test(l));
  if (!summary) throw new Error(`${plugin} --help says nothing about what it does`);
  return { summary, usage: usage ?? `kubectl ${plugin} [flags]` };
}

/** What the plugin does, as krew's index asks of a description (how to run it is in caveats). */
export function description(plugin: string, summary: string, all: readonly string[]): string {
  const others = all.filter((p) => p !== plugin);
  return wrap([
    `${summary}.`.replace(/\.\.$/, '.'),
    '',
    "Part of kt, kubectl plugins that join a developer's machine to a cluster through a per-session " +
      `shadow pod reached over one port-forward${others.length ? `. The others: ${others.join(', ')}` : ''}.`,
  ].join('\n'));
}

/** Shown after install: how to run the plugin, and how to link its completion helper. */
export function caveats(plugin: string, usage: string): string {
  const u = plugin.replaceAll('-', '_');
  return wrap([
    'Usage:',
    `  ${usage}`,
    `  kubectl ${plugin} --help`,
    '',
    `Shell completion of "kubectl ${plugin}" (kubectl 1.26+, with kubectl's own completion loaded) runs ` +
      `the helper kubectl_complete-${u} from PATH. krew puts only the plugin there; link the helper beside it:`,
    '  cd "${KREW_ROOT:-$HOME/.krew}/bin"',
    `  ln -sf kubectl-${u} kubectl_complete-${u}`,
    `(Windows: copy kubectl_complete-${u}.cmd from the plugin's folder under ` +
      `%USERPROFILE%\\.krew\\store\\${plugin} into %USERPROFILE%\\.krew\\bin.)`,
    `To complete kubectl-${u} run by its own name: kubectl ${plugin} completion bash|zsh|fish`,
  ].join('\n'));
}

const q = (s: string): string => JSON.stringify(s); // a JSON string is a YAML double-quoted scalar
const block = (s: string, indent: string): string => `|\n${s.split('\n').map((l) => (l ? indent + l : '')).join('\n')}`;

export function krewManifest(m: ManifestInput): string {
  if (!/^v?\d+\.\d+\.\d+/.test(m.version)) throw new Error(`version "${m.version}" is not semver`);
  const lines = [
    'apiVersion: krew.googlecontainertools.github.com/v1alpha2',
    'kind: Plugin',
    'metadata:',
    `  name: ${m.plugin}`,
    'spec:',
    `  version: ${q(m.version.startsWith('v') ? m.version : `v${m.version}`)}`,
    `  homepage: ${q(m.homepage)}`,
    `  shortDescription: ${q(m.shortDescription)}`,
    `  description: ${block(m.description, '    ')}`,
  ];
  if (m.caveats) lines.push(`  caveats: ${block(m.caveats, '    ')}`);
  lines.push('  platforms:');
  for (const { platform: p, uri, sha256 } of m.platforms) {
    if (!/^[0-9a-f]{64}$/.test(sha256)) throw new Error(`${m.plugin} ${p.id}: sha256 "${sha256}" is not 64 lowercase hex digits`);
    const bin = pluginBinName(m.plugin, p);
    lines.push(
      '  - selector:',
      '      matchLabels:',
      `        os: ${p.os}`,
      `        arch: ${p.arch}`,
      `    uri: ${q(uri)}`,
      `    sha256: ${q(sha256)}`,
      '    files:',
      ...[bin, completeHelperName(m.plugin, p), 'LICENSE'].flatMap((f) => [`    - from: ${q(f)}`, '      to: "."']),
      `    bin: ${q(bin)}`,
    );
  }
  return `${lines.join('\n')}\n`;
}
