// The released binary is one multi-call program per platform holding every plugin: it runs the
// plugin named by the file it was invoked as (in a Node single executable, process.argv[1] is
// that name), so the same file serves as kubectl-kt_connect, kubectl-kt_status, ... and, invoked
// as kubectl_complete-kt_connect, as kubectl's completion helper for kt-connect. Run under any
// other name it takes the plugin as its first argument: `kt kt-connect --help`.
import { basename } from 'node:path';
import { VERSION } from '../cli/version.ts';

export interface Invocation {
  plugin: string;
  args: string[];
}

/** Which plugin, with which arguments, an invocation by `name` with `args` means. */
export function resolveInvocation(name: string, args: string[], plugins: readonly string[]): Invocation | undefined {
  const base = basename(name.replaceAll('\\', '/')).replace(/\.exe$/i, '');
  const m = /^kubectl(_complete)?-(.+)$/.exec(base);
  if (m) {
    const plugin = m[2]!.replaceAll('_', '-');
    if (plugins.includes(plugin)) return { plugin, args: m[1] ? ['__complete', ...args] : args };
    return undefined;
  }
  if (args[0] && plugins.includes(args[0])) return { plugin: args[0], args: args.slice(1) };
  return undefined;
}

export type Entries = Record<string, () => Promise<unknown>>;

/** Rewrites process.argv for the chosen plugin and loads its entry (which runs it). */
export function dispatch(entries: Entries): void {
  const plugins = Object.keys(entries).sort();
  const inv = resolveInvocation(process.argv[1] ?? '', process.argv.slice(2), plugins);
  if (!inv) {
    const names = plugins.map((p) => `kubectl-${p.replaceAll('-', '_')}`).join(', ');
    process.stderr.write(`kt ${VERSION}: this program holds the kubectl plugins ${plugins.join(', ')}; install it as ${names} (krew does), or run it as: ${basename(process.argv[1] ?? 'kt')} PLUGIN [args...]\n`);
    process.exit(2);
  }
  process.argv.splice(2, process.argv.length - 2, ...inv.args);
  entries[inv.plugin]!().catch((e: unknown) => {
    process.stderr.write(`${inv.plugin}: ${(e as Error).message}\n`);
    process.exit(1);
  });
}
