// Command definitions for the plugins. Each command is declared once — its flags as a typed record,
// its positional arguments, its subcommands — and that one declaration configures yargs (parsing,
// validation, coercion, help grouped as kubectl's), the typo checks and shell completion
// (completion.ts). A command's run() receives typed options (camelCase fields), so no module past
// this edge looks a flag up by its string name or restates its default.
import yargs from 'yargs';
import { UserError } from './errors.ts';
import { parseDuration } from './duration.ts';

/** What a flag's or argument's value is completed with, beyond its choices. */
export type Completer = 'namespace' | 'context' | 'service' | 'file' | 'cluster' | 'user'
  /** SERVICE or deployment/NAME. */
  | 'service-or-deployment'
  /** deployment/NAME or pod/NAME. */
  | 'workload';

interface FlagBase {
  readonly short?: string;
  readonly description: string;
  readonly complete?: Completer;
  /** The help section; kubectl's generic flags are apart from each command's own. */
  readonly group?: 'kube';
}
export interface StringFlag extends FlagBase {
  readonly type: 'string';
  readonly default?: string;
  /** Allowed values, for validation, help and completion. */
  readonly choices?: readonly string[];
}
export interface BooleanFlag extends FlagBase { readonly type: 'boolean' }
/** Repeatable, and comma-separated within one value: --include-cidr a,b --include-cidr c. */
export interface ListFlag extends FlagBase {
  readonly type: 'list';
  /** false: each repeat is one value, commas and all (kubectl's stringArray, e.g. --as-group). */
  readonly commas?: boolean;
}
/** 90s, 5m, 1h, 1m30s, 500ms; a plain number is seconds. The value is in milliseconds. */
export interface DurationFlag extends FlagBase {
  readonly type: 'duration';
  readonly default?: string;
  /** The least allowed, in ms. */
  readonly min?: number;
}
export type FlagDef = StringFlag | BooleanFlag | ListFlag | DurationFlag;
export type Flags = Readonly<Record<string, FlagDef>>;

type Camel<S extends string> = S extends `${infer H}-${infer T}` ? `${H}${Capitalize<Camel<T>>}` : S;

type ValueOf<F> =
  F extends BooleanFlag ? boolean
    : F extends ListFlag ? readonly string[]
      : F extends DurationFlag ? (F extends { default: string } ? number : number | undefined)
        : F extends { choices: readonly (infer C)[]; default: string } ? C
          : F extends { choices: readonly (infer C)[] } ? C | undefined
            : F extends { default: string } ? string
              : string | undefined;

/** The typed values of a set of flags, by camelCase name. */
export type Values<F extends Flags> = { readonly [K in keyof F & string as Camel<K>]: ValueOf<F[K]> };

/** What a command's run() gets: its flags' values, its positional arguments and what followed `--`. */
export type Options<F extends Flags> = Values<F> & {
  readonly args: readonly string[];
  /** Everything after `--` (a command of the user's). */
  readonly rest: readonly string[];
};

export interface Positional {
  /** As the usage line names it, e.g. SERVICE. */
  readonly name: string;
  readonly complete?: Completer | readonly string[];
}

export interface Command<F extends Flags = Flags> {
  /** The plugin name as kubectl shows it (kt-connect), or the subcommand's (status). */
  readonly name: string;
  readonly summary: string;
  readonly usage: string;
  readonly examples?: readonly string[];
  readonly flags: F;
  /** The positional arguments the command takes (before `--`); none when unset. */
  readonly positionals?: readonly Positional[];
  /** Named subcommands, e.g. `kt-connect status`. */
  readonly subcommands?: readonly Command[];
  // A method, so that a command with more flags is still a Command<Flags> for lists of them.
  run(o: Options<F>): Promise<number>;
}

/** Declares a command, inferring its options' types from its flags. */
export function command<const F extends Flags>(c: Command<F>): Command<F> {
  return c;
}

/** Declares a set of flags shared by several commands, keeping their literal types. */
export function flags<const F extends Flags>(f: F): F {
  return f;
}

export const KUBE_FLAGS = flags({
  kubeconfig: { type: 'string', group: 'kube', description: 'Path to the kubeconfig file (default: $KUBECONFIG, merged like kubectl, or ~/.kube/config)', complete: 'file' },
  context: { type: 'string', group: 'kube', description: 'The kubeconfig context to use', complete: 'context' },
  namespace: { type: 'string', short: 'n', group: 'kube', description: "Namespace (default: the context's namespace)", complete: 'namespace' },
  debug: { type: 'boolean', group: 'kube', description: 'Print debug logs' },
  // kubectl's generic flags, applied to the loaded kubeconfig as client-go's ConfigOverrides are
  // (plugins/kube/kubeconfig.ts applyOverrides).
  cluster: { type: 'string', group: 'kube', description: 'The kubeconfig cluster to use', complete: 'cluster' },
  user: { type: 'string', group: 'kube', description: 'The kubeconfig user to use', complete: 'user' },
  server: { type: 'string', short: 's', group: 'kube', description: 'The address and port of the Kubernetes API server' },
  'certificate-authority': { type: 'string', group: 'kube', description: 'Path to a cert file for the certificate authority', complete: 'file' },
  'insecure-skip-tls-verify': { type: 'boolean', group: 'kube', description: "Do not check the server's certificate (insecure)" },
  'tls-server-name': { type: 'string', group: 'kube', description: "Server name to use for server certificate validation (default: the server's host)" },
  token: { type: 'string', group: 'kube', description: 'Bearer token for authentication to the API server' },
  'client-certificate': { type: 'string', group: 'kube', description: 'Path to a client certificate file for TLS', complete: 'file' },
  'client-key': { type: 'string', group: 'kube', description: 'Path to a client key file for TLS', complete: 'file' },
  as: { type: 'string', group: 'kube', description: 'Username to impersonate for the operation (a user or system:serviceaccount:NS:NAME)' },
  'as-group': { type: 'list', commas: false, group: 'kube', description: 'Group to impersonate for the operation; repeat for several groups' },
  'as-uid': { type: 'string', group: 'kube', description: 'UID to impersonate for the operation' },
  'request-timeout': { type: 'duration', group: 'kube', description: 'How long to wait for each API request before giving up (1s, 2m, 3h; a plain number is seconds; 0: no timeout)', default: '0' },
  v: { type: 'string', short: 'v', group: 'kube', description: 'Log level: 4 or more prints debug logs, 6 or more every API request' },
});

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

const fullName = (cmd: Command, parent?: Command): string => (parent ? `${parent.name} ${cmd.name}` : cmd.name);

/**
 * Fails, before anything runs, on a positional argument the command does not take: a mistyped
 * subcommand (`kt-connect statuss`) must not start a session.
 */
export function checkPositionals(cmd: Command, positionals: readonly string[], parent?: Command): void {
  const max = cmd.positionals?.length ?? 0;
  if (positionals.length <= max) return;
  const extra = positionals[max]!;
  const help = `see 'kubectl ${fullName(cmd, parent)} --help'`;
  const subs = (cmd.subcommands ?? []).map((s) => s.name);
  if (subs.includes(extra)) throw new UserError(`"${extra}" is a subcommand and comes first: kubectl ${cmd.name} ${extra} ...; ${help}.`, 2);
  if (max === 0 && positionals.length === 1 && subs.length > 0) {
    const close = suggest(extra, subs);
    throw new UserError(`unknown command "${extra}" for ${cmd.name}${close ? `; did you mean ${close}?` : ` (its commands: ${subs.join(', ')});`} ${help}.`, 2);
  }
  const close = suggest(extra, subs);
  const takes = max === 0 ? 'no arguments' : max === 1 ? 'one argument' : `${max} arguments`;
  throw new UserError(`unexpected argument "${extra}"${close ? ` (did you mean ${close}?)` : ''}: ${fullName(cmd, parent)} takes ${takes}; ${help}.`, 2);
}

const FLAGS_GROUP = 'Flags:';
const KUBE_GROUP = 'Kubernetes flags (as kubectl):';

/** The yargs parser of one command, configured from its declaration. */
function parser(cmd: Command, parent?: Command): ReturnType<typeof yargs> {
  const y = yargs()
    .scriptName(`kubectl ${fullName(cmd, parent)}`)
    .usage(`${cmd.summary}\n\nUsage:\n  ${cmd.usage}`)
    .parserConfiguration({
      'populate--': true,
      // --no-headers is a flag of its own, as in kubectl, not the negation of --headers.
      'boolean-negation': false,
      // Repeats collect for list flags; a repeated single-value flag keeps its last value (below).
      'duplicate-arguments-array': true,
      'greedy-arrays': false,
      'dot-notation': false,
      'parse-numbers': false,
      'parse-positional-numbers': false,
      'strip-aliased': true,
    })
    .strictOptions()
    .exitProcess(false)
    .version(false)
    .locale('en')
    .wrap(Math.min(120, process.stdout.columns || 100))
    .help('help')
    .alias('help', 'h')
    .describe('help', 'Show this help')
    .option('version', { type: 'boolean', describe: 'Show the version and the images this version deploys' });
  const own: string[] = [];
  const kube: string[] = [];
  for (const [name, f] of Object.entries(cmd.flags)) {
    (f.group === 'kube' ? kube : own).push(name);
    const base = { describe: f.description, ...(f.short && f.short !== name ? { alias: f.short } : {}) };
    switch (f.type) {
      case 'boolean': y.option(name, { ...base, type: 'boolean' }); break;
      case 'list': y.option(name, { ...base, type: 'string', array: true, requiresArg: true }); break;
      case 'duration': y.option(name, { ...base, type: 'string', requiresArg: true, ...(f.default !== undefined ? { default: f.default } : {}) }); break;
      case 'string': y.option(name, { ...base, type: 'string', requiresArg: true, ...(f.default !== undefined ? { default: f.default } : {}), ...(f.choices ? { choices: [...f.choices] } : {}) }); break;
    }
  }
  y.group([...own, 'help', 'version'], FLAGS_GROUP);
  if (kube.length > 0) y.group(kube, KUBE_GROUP);
  for (const s of cmd.subcommands ?? []) y.command(s.name, s.summary);
  for (const e of cmd.examples ?? []) {
    const [text, note] = e.split(/\s+#\s+/, 2);
    y.example(text!.trim(), note ?? '');
  }
  return y;
}

/** The help of a command, generated by yargs from its declaration. */
export async function helpText(cmd: Command, parent?: Command): Promise<string> {
  return (await parser(cmd, parent).getHelp()).replace(/\n+$/, '');
}

/** yargs' messages, as one sentence in kubectl's words. */
function userError(cmd: Command, parent: Command | undefined, argv: readonly string[], message: string): UserError {
  const help = `see 'kubectl ${fullName(cmd, parent)} --help'`;
  const unknown = /^Unknown arguments?: (.+)$/.exec(message);
  if (unknown) {
    const name = unknown[1]!.split(', ')[0]!;
    const long = argv.some((w) => w === `--${name}` || w.startsWith(`--${name}=`));
    const flag = long || name.length > 1 ? `--${name}` : `-${name}`;
    const close = long ? suggest(name, [...Object.keys(cmd.flags), 'help', 'version']) : undefined;
    return new UserError(`unknown flag ${flag}${close ? ` (did you mean --${close}?)` : ''}; ${help}.`, 2);
  }
  const missing = /^Not enough arguments following: (.+)$/.exec(message);
  if (missing) return new UserError(`flag --${missing[1]} needs a value; ${help}.`, 2);
  const invalid = /Argument: ([^,]+), Given: "([^"]*)", Choices: (.+)$/m.exec(message);
  if (invalid) {
    const choices = invalid[3]!.split(', ').map((c) => c.replace(/^"|"$/g, ''));
    return new UserError(`--${invalid[1]} must be one of ${choices.join(', ')}, not "${invalid[2]}".`, 2);
  }
  return new UserError(`${message.replace(/\s*\n\s*/g, ' ').replace(/\.$/, '')}; ${help}.`, 2);
}

const camel = (name: string): string => name.replace(/-([a-z0-9])/g, (_, c: string) => c.toUpperCase());

/** The value of one flag from what yargs parsed: defaults applied, repeats resolved, converted. */
function valueOf(name: string, f: FlagDef, raw: unknown): unknown {
  const last = Array.isArray(raw) ? raw[raw.length - 1] : raw;
  switch (f.type) {
    case 'boolean': return last === true;
    case 'list': {
      const items = Array.isArray(raw) ? raw : raw === undefined ? [] : [raw];
      return items.flatMap((x) => (f.commas === false ? [String(x)] : String(x).split(','))).filter((x) => x !== '');
    }
    case 'duration': return last === undefined ? undefined : parseDuration(String(last), name, f.min ?? 0);
    // Choices were checked by yargs (its message is turned into ours in userError).
    case 'string': return last === undefined ? undefined : String(last);
  }
}

/** Parses a command's words into its typed options; every mistake is one sentence, exit code 2. */
export function parse<F extends Flags>(cmd: Command<F>, argv: readonly string[], parent?: Command): Options<F> {
  let parsed: Record<string, unknown> | undefined;
  let failure: string | undefined;
  parser(cmd as Command, parent)
    .help(false)
    .fail((msg) => { failure = msg; })
    .parse([...argv], {}, (err: Error | undefined, args: Record<string, unknown>) => {
      if (err && failure === undefined) failure = err.message;
      parsed = args;
    });
  if (failure !== undefined || !parsed) throw userError(cmd as Command, parent, argv, failure ?? 'the command line could not be read');
  const out: Record<string, unknown> = {};
  for (const [name, f] of Object.entries(cmd.flags)) out[camel(name)] = valueOf(name, f, parsed[name]);
  // kubectl's -v levels on kt's log: 4 and up is debug.
  if ('v' in cmd.flags && typeof out.v === 'string') {
    if (!/^\d+$/.test(out.v)) throw new UserError(`-v takes a log level (a number such as 4 or 6), not "${out.v}".`, 2);
    if (Number(out.v) >= 4) out.debug = true;
  }
  out.args = ((parsed._ as unknown[] | undefined) ?? []).map(String);
  out.rest = ((parsed['--'] as unknown[] | undefined) ?? []).map(String);
  return out as Options<F>;
}

/** Parses key=value pairs such as --node-selector disk=ssd,zone=a. */
export function keyValues(name: string, items: readonly string[]): Record<string, string> | undefined {
  if (items.length === 0) return undefined;
  const out: Record<string, string> = {};
  for (const item of items) {
    const i = item.indexOf('=');
    if (i <= 0) throw new UserError(`--${name} takes key=value pairs, not "${item}".`, 2);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}
