// The command runner every plugin entry calls: shell completion, help, version, subcommands, and
// errors as one sentence with an exit code, after undoing whatever the command had changed.
import { checkPositionals, helpText, parse, type Command } from './cli.ts';
import { runComplete, withCompletion } from './completion.ts';
import { UserError } from './errors.ts';
import { VERSION } from './version.ts';
import { closeOpenLifecycles } from '../session/lifecycle.ts';

/** Runs a command: help, version, subcommands, and errors as one sentence with an exit code. */
export async function main(spec: Command, argv = process.argv.slice(2)): Promise<never> {
  // A terminal or pipe that goes away (a closed tee, a killed ssh) must not crash kt before it has
  // undone its changes: output errors are dropped, cleanup goes on.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  let code: number;
  try {
    // Shell completion: kubectl's kubectl_complete-<plugin> helper asks `<plugin> __complete words...`.
    if (argv[0] === '__complete' || argv[0] === '__completeNoDesc') return await exitAfterOutput(await runComplete(spec, argv.slice(1), argv[0] === '__complete'));
    spec = withCompletion(spec);
    const sub = spec.subcommands?.find((s) => s.name === argv[0]);
    const target = sub ?? spec;
    const rest = sub ? argv.slice(1) : argv;
    const beforeRest = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
    if (beforeRest.includes('--help') || beforeRest.includes('-h')) {
      process.stdout.write(`${await helpText(target, sub ? spec : undefined)}\n`);
      return await exitAfterOutput(0);
    }
    if (beforeRest.includes('--version')) {
      let o: { image?: string | undefined; routerImage?: string | undefined } = {};
      try {
        const v: Record<string, unknown> = parse(target, rest, sub ? spec : undefined);
        const text = (x: unknown): string | undefined => (typeof x === 'string' ? x : undefined);
        o = { image: text(v.image), routerImage: text(v.routerImage) };
      } catch { /* the defaults, then */ }
      process.stdout.write(`${spec.name} ${VERSION}\n${(await import('./images.ts')).imageLines(o)}`);
      return await exitAfterOutput(0);
    }
    const options = parse(target, rest, sub ? spec : undefined);
    checkPositionals(target, options.args, sub ? spec : undefined);
    code = await target.run(options);
    await closeOpenLifecycles();
  } catch (e) {
    // Whatever step failed, what was changed is undone before the error is reported.
    await closeOpenLifecycles();
    if (e instanceof UserError) {
      process.stderr.write(`${spec.name}: ${e.message}\n`);
      code = e.exitCode;
    } else {
      const err = e as Error;
      process.stderr.write(`${spec.name}: ${err.message}\n`);
      if (debugAsked(argv)) process.stderr.write(`${err.stack ?? ''}\n`);
      code = 1;
    }
  }
  return exitAfterOutput(code);
}

/** --debug or kubectl's -v 4 and up, read from the words as given (the parse may be what failed). */
function debugAsked(argv: readonly string[]): boolean {
  return argv.some((w, i) => {
    if (w === '--debug') return true;
    const m = /^--?v(?:=?(\d+))?$/.exec(w);
    const level = m ? m[1] ?? argv[i + 1] : undefined;
    return level !== undefined && Number(level) >= 4;
  });
}

/** Resolves once everything written to `stream` so far is handed to the OS, or the stream is gone. */
function drained(stream: NodeJS.WriteStream): Promise<void> {
  if (stream.destroyed || stream.writableLength === 0) return Promise.resolve();
  return new Promise((resolve) => {
    stream.once('close', () => resolve());
    stream.once('error', () => resolve());
    stream.write('', () => resolve());
  });
}

/**
 * Exits with `code` once stdout and stderr are flushed: process.exit() right after a write drops
 * what a pipe has not taken yet (`kt-status -o json | slow-reader`). The exit itself stays
 * explicit, as open keep-alive connections to the API server would hold the process otherwise.
 */
async function exitAfterOutput(code: number): Promise<never> {
  process.exitCode = code;
  await Promise.all([drained(process.stdout), drained(process.stderr)]);
  process.exit(code);
}
