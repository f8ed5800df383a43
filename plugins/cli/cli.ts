// Command definitions for the plugins: kubectl-style flags (kebab-case, -n, --context,
// --kubeconfig), help text, one-sentence errors with a non-zero exit, and the data that shell
// completion is generated from. Built on node:util parseArgs.
import { parseArgs } from 'node:util';
import { UserError } from './errors.ts';

export interface FlagSpec {
  name: string;
  short?: string;
  type: 'string' | 'boolean';
  description: string;
  default?: string | boolean;
  multiple?: boolean;
  /** Allowed values, for validation and completion. */
  choices?: readonly string[];
  /** What to complete the value with, beyond choices. */
  complete?: 'namespace' | 'context' | 'service' | 'file' | 'cluster' | 'user';
}

export type FlagValues = Record<string, string | boolean | string[] | undefined>;

export interface Parsed {
  flags: FlagValues;
  positionals: string[];
  /** Everything after `--`. */
  rest: string[];
}

export interface CommandSpec {
  /** The plugin name as kubectl shows it, e.g. kt-connect. */
  name: string;
  summary: string;
  usage: string;
  examples?: string[];
  flags: FlagSpec[];
  /** Named subcommands, e.g. `kt-connect status`. */
  subcommands?: CommandSpec[];
  /** The most positional arguments the command takes (before `--`); none when unset. */
  positionals?: number;
  run(p: Parsed): Promise<number>;
}

export const KUBE_FLAGS: FlagSpec[] = [
  { name: 'kubeconfig', type: 'string', description: 'Path to the kubeconfig file (default: $KUBECONFIG, merged like kubectl, or ~/.kube/config)', complete: 'file' },
  { name: 'context', type: 'string', description: 'The kubeconfig context to use', complete: 'context' },
  { name: 'namespace', short: 'n', type: 'string', description: "Namespace (default: the context's namespace)", complete: 'namespace' },
  { name: 'debug', type: 'boolean', description: 'Print debug logs' },
  // kubectl's generic flags, applied to the loaded kubeconfig as client-go's ConfigOverrides are
  // (plugins/kube/kubeconfig.ts applyOverrides).
  { name: 'cluster', type: 'string', description: 'The kubeconfig cluster to use', complete: 'cluster' },
  { name: 'user', type: 'string', description: 'The kubeconfig user to use', complete: 'user' },
  { name: 'server', short: 's', type: 'string', description: 'The address and port of the Kubernetes API server' },
  { name: 'certificate-authority', type: 'string', description: 'Path to a cert file for the certificate authority', complete: 'file' },
  { name: 'insecure-skip-tls-verify', type: 'boolean', description: "Do not check the server's certificate (insecure)" },
  { name: 'tls-server-name', type: 'string', description: "Server name to use for server certificate validation (default: the server's host)" },
  { name: 'token', type: 'string', description: 'Bearer token for authentication to the API server' },
  { name: 'client-certificate', type: 'string', description: 'Path to a client certificate file for TLS', complete: 'file' },
  { name: 'client-key', type: 'string', description: 'Path to a client key file for TLS', complete: 'file' },
  { name: 'as', type: 'string', description: 'Username to impersonate for the operation (a user or system:serviceaccount:NS:NAME)' },
  { name: 'as-group', type: 'string', multiple: true, description: 'Group to impersonate for the operation; repeat for several groups' },
  { name: 'as-uid', type: 'string', description: 'UID to impersonate for the operation' },
  { name: 'request-timeout', type: 'string', description: 'How long to wait for each API request before giving up (1s, 2m, 3h; a plain number is seconds; 0: no timeout)', default: '0' },
  { name: 'v', short: 'v', type: 'string', description: 'Log level: 4 or more prints debug logs, 6 or more every API request' },
];

/** The closest of `candidates` to `word` within Levenshtein distance 2, for "did you mean". */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestDistance) { best = c; bestDistance = d; }
  }
  return best;
}

export function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      row[j] = Math.min(prev[j]! + 1, row[j - 1]! + 1, prev[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    prev = row;
  }
  return prev[b.length]!;
}

/**
 * Fails, before anything runs, on a positional argument the command does not take: a mistyped
 * subcommand (`kt-connect statuss`) must not start a session.
 */
export function checkPositionals(spec: CommandSpec, positionals: readonly string[], parent?: CommandSpec): void {
  const max = spec.positionals ?? 0;
  if (positionals.length <= max) return;
  const extra = positionals[max]!;
  const help = `see 'kubectl ${parent ? `${parent.name} ${spec.name}` : spec.name} --help'`;
  const subs = (spec.subcommands ?? []).map((s) => s.name);
  if (subs.includes(extra)) throw new UserError(`"${extra}" is a subcommand and comes first: kubectl ${spec.name} ${extra} ...; ${help}.`, 2);
  if (max === 0 && positionals.length === 1 && subs.length > 0) {
    const close = suggest(extra, subs);
    throw new UserError(`unknown command "${extra}" for ${spec.name}${close ? `; did you mean ${close}?` : ` (its commands: ${subs.join(', ')});`} ${help}.`, 2);
  }
  const close = suggest(extra, subs);
  const takes = max === 0 ? 'no arguments' : max === 1 ? 'one argument' : `${max} arguments`;
  throw new UserError(`unexpected argument "${extra}"${close ? ` (did you mean ${close}?)` : ''}: ${parent ? `${parent.name} ${spec.name}` : spec.name} takes ${takes}; ${help}.`, 2);
}

export function helpText(spec: CommandSpec): string {
  const lines = [spec.summary, '', 'Usage:', `  ${spec.usage}`];
  if (spec.subcommands?.length) {
    lines.push('', 'Commands:');
    for (const s of spec.subcommands) lines.push(`  ${s.name.padEnd(12)} ${s.summary}`);
  }
  if (spec.examples?.length) lines.push('', 'Examples:', ...spec.examples.map((e) => `  ${e}`));
  lines.push('', 'Flags:');
  const all = [...spec.flags, { name: 'help', short: 'h', type: 'boolean', description: 'Show this help' } as FlagSpec, { name: 'version', type: 'boolean', description: 'Show the version' } as FlagSpec];
  for (const f of all) {
    const left = `${f.short ? `-${f.short}, ` : '    '}--${f.name}${f.type === 'string' ? ' string' : ''}`;
    const def = f.default !== undefined && f.default !== false ? ` (default ${JSON.stringify(f.default)})` : '';
    lines.push(`  ${left.padEnd(32)} ${f.description}${def}`);
  }
  return lines.join('\n');
}

export function parse(spec: CommandSpec, argv: string[]): Parsed {
  const options: Record<string, { type: 'string' | 'boolean'; short?: string; multiple?: boolean }> = {
    help: { type: 'boolean', short: 'h' },
    version: { type: 'boolean' },
  };
  for (const f of spec.flags) options[f.name] = { type: f.type, ...(f.short ? { short: f.short } : {}), ...(f.multiple ? { multiple: true } : {}) };
  let values: FlagValues;
  let positionals: string[];
  let rest: string[];
  try {
    const r = parseArgs({ args: argv, options, strict: true, allowPositionals: true, tokens: true });
    const term = r.tokens.find((t) => t.kind === 'option-terminator');
    const restStart = term ? term.index + 1 : argv.length;
    rest = argv.slice(restStart);
    positionals = r.tokens.filter((t) => t.kind === 'positional' && t.index < restStart).map((t) => (t as { value: string }).value);
    values = r.values as FlagValues;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const m = /'(-[^']+)'/.exec(err.message);
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      const flag = m?.[1] ?? '';
      const close = flag.startsWith('--') ? suggest(flag.slice(2).split('=')[0]!, [...spec.flags.map((f) => f.name), 'help', 'version']) : undefined;
      throw new UserError(`unknown flag ${flag}${close ? ` (did you mean --${close}?)` : ''}; see 'kubectl ${spec.name} --help'.`, 2);
    }
    if (err.code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') throw new UserError(`flag ${m?.[1] ?? ''} needs a value; see 'kubectl ${spec.name} --help'.`, 2);
    throw new UserError(`${err.message}; see 'kubectl ${spec.name} --help'.`, 2);
  }
  for (const f of spec.flags) {
    if (values[f.name] === undefined && f.default !== undefined) values[f.name] = f.default;
    const v = values[f.name];
    if (f.choices && typeof v === 'string' && !f.choices.includes(v)) {
      throw new UserError(`--${f.name} must be one of ${f.choices.join(', ')}, not "${v}".`, 2);
    }
  }
  // kubectl's -v levels on kt's log: 4 and up is debug.
  const level = values.v;
  if (typeof level === 'string') {
    if (!/^\d+$/.test(level)) throw new UserError(`-v takes a log level (a number such as 4 or 6), not "${level}".`, 2);
    if (Number(level) >= 4) values.debug = true;
  }
  return { flags: values, positionals, rest };
}

export function str(p: Parsed, name: string): string | undefined {
  const v = p.flags[name];
  return typeof v === 'string' ? v : undefined;
}

export function bool(p: Parsed, name: string): boolean {
  return p.flags[name] === true;
}

export function list(p: Parsed, name: string): string[] {
  const v = p.flags[name];
  if (Array.isArray(v)) return v.flatMap((x) => x.split(',')).filter((x) => x !== '');
  if (typeof v === 'string') return v.split(',').filter((x) => x !== '');
  return [];
}

/** Parses key=value pairs such as --node-selector disk=ssd,zone=a. */
export function keyValues(p: Parsed, name: string): Record<string, string> | undefined {
  const items = list(p, name);
  if (items.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UserError(`--${name} takes key=value pairs, not "${item}".`, 2);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
