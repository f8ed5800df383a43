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
  complete?: 'namespace' | 'context' | 'service' | 'file';
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
  run(p: Parsed): Promise<number>;
}

export const KUBE_FLAGS: FlagSpec[] = [
  { name: 'kubeconfig', type: 'string', description: 'Path to the kubeconfig file (default: $KUBECONFIG, merged like kubectl, or ~/.kube/config)', complete: 'file' },
  { name: 'context', type: 'string', description: 'The kubeconfig context to use', complete: 'context' },
  { name: 'namespace', short: 'n', type: 'string', description: "Namespace (default: the context's namespace)", complete: 'namespace' },
  { name: 'debug', type: 'boolean', description: 'Print debug logs' },
];

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
    if (err.code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') throw new UserError(`unknown flag ${m?.[1] ?? ''}; see 'kubectl ${spec.name} --help'.`, 2);
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
