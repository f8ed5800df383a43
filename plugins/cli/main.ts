// The command runner every plugin entry calls: shell completion, help, version, subcommands, and
// errors as one sentence with an exit code, after undoing whatever the command had changed.
import { helpText, parse, type CommandSpec, type FlagValues } from './cli.ts';
import { runComplete, withCompletion } from './completion.ts';
import { UserError } from './errors.ts';
import { VERSION } from './version.ts';
import { closeOpenLifecycles } from '../session/lifecycle.ts';

/** Runs a command: help, version, subcommands, and errors as one sentence with an exit code. */
export async function main(spec: CommandSpec, argv = process.argv.slice(2)): Promise<never> {
  // A terminal or pipe that goes away (a closed tee, a killed ssh) must not crash kt before it has
  // undone its changes: output errors are dropped, cleanup goes on.
  process.stdout.on('error', () => {});
  process.stderr.on('error', () => {});
  let code: number;
  try {
    // Shell completion: kubectl's kubectl_complete-<plugin> helper asks `<plugin> __complete words...`.
    if (argv[0] === '__complete' || argv[0] === '__completeNoDesc') process.exit(await runComplete(spec, argv.slice(1), argv[0] === '__complete'));
    spec = withCompletion(spec);
    const sub = spec.subcommands?.find((s) => s.name === argv[0]);
    const target = sub ?? spec;
    const rest = sub ? argv.slice(1) : argv;
    if (rest.includes('--help') || rest.includes('-h')) {
      process.stdout.write(`${helpText(target)}\n`);
      process.exit(0);
    }
    if (rest.includes('--version') && !rest.slice(0, rest.indexOf('--version')).includes('--')) {
      let flags: FlagValues = {};
      try { flags = parse(target, rest).flags; } catch { /* the defaults, then */ }
      process.stdout.write(`${spec.name} ${VERSION}\n${(await import('./images.ts')).imageLines(flags)}`);
      process.exit(0);
    }
    code = await target.run(parse(target, rest));
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
      if (process.argv.includes('--debug')) process.stderr.write(`${err.stack ?? ''}\n`);
      code = 1;
    }
  }
  process.exit(code);
}
