// A mistyped subcommand, argument or flag fails in one sentence, with the closest name when one is
// near (Levenshtein distance 2 or less), before anything runs.
import { describe, expect, it } from 'vitest';
import { checkPositionals, command, levenshtein, parse, suggest } from '../../../../plugins/cli/cli.ts';
import { UserError } from '../../../../plugins/cli/errors.ts';

const run = (): Promise<number> => Promise.resolve(0);
const connect = command({
  name: 'kt-connect', summary: '', usage: '', run,
  flags: { namespace: { short: 'n', type: 'string', description: '' } },
  subcommands: [command({ name: 'status', summary: '', usage: '', flags: {}, run }), command({ name: 'rbac', summary: '', usage: '', flags: {}, run })],
});
const exchange = command({ name: 'kt-exchange', summary: '', usage: '', flags: {}, positionals: [{ name: 'SERVICE' }], run });

function failure(fn: () => void): UserError {
  try { fn(); } catch (e) { if (e instanceof UserError) return e; throw e; }
  throw new Error('did not fail');
}

describe('typo suggestions', () => {
  it('measures edit distance', () => {
    expect(levenshtein('status', 'status')).toBe(0);
    expect(levenshtein('statuss', 'status')).toBe(1);
    expect(levenshtein('stauts', 'status')).toBe(2);
    expect(levenshtein('', 'abc')).toBe(3);
    expect(suggest('statuss', ['status', 'rbac'])).toBe('status');
    expect(suggest('rbca', ['status', 'rbac'])).toBe('rbac');
    expect(suggest('deploy', ['status', 'rbac'])).toBeUndefined();
  });

  it('an unknown subcommand names the close one, exit 2', () => {
    const e = failure(() => checkPositionals(connect, ['statuss']));
    expect(e.message).toBe("unknown command \"statuss\" for kt-connect; did you mean status? see 'kubectl kt-connect --help'.");
    expect(e.exitCode).toBe(2);
    expect(failure(() => checkPositionals(connect, ['deploy'])).message).toBe("unknown command \"deploy\" for kt-connect (its commands: status, rbac); see 'kubectl kt-connect --help'.");
    expect(failure(() => checkPositionals(connect, ['status'])).message).toMatch(/"status" is a subcommand and comes first/);
  });

  it('an argument too many is refused, a command with one takes one', () => {
    expect(() => checkPositionals(exchange, ['echo'])).not.toThrow();
    expect(failure(() => checkPositionals(exchange, ['echo', 'extra'])).message).toBe("unexpected argument \"extra\": kt-exchange takes one argument; see 'kubectl kt-exchange --help'.");
    expect(failure(() => checkPositionals(connect.subcommands![0]!, ['x'], connect)).message).toBe("unexpected argument \"x\": kt-connect status takes no arguments; see 'kubectl kt-connect status --help'.");
    expect(() => checkPositionals(connect, [])).not.toThrow();
  });

  it('an unknown flag names the close one', () => {
    expect(failure(() => parse(connect, ['--namspace', 'x'])).message).toBe("unknown flag --namspace (did you mean --namespace?); see 'kubectl kt-connect --help'.");
    expect(failure(() => parse(connect, ['--zzz'])).message).toBe("unknown flag --zzz; see 'kubectl kt-connect --help'.");
    expect(failure(() => parse(connect, ['-x'])).message).toBe("unknown flag -x; see 'kubectl kt-connect --help'.");
    expect(failure(() => parse(connect.subcommands![0]!, ['--namespace', 'x'], connect)).message).toBe("unknown flag --namespace; see 'kubectl kt-connect status --help'.");
  });
});
