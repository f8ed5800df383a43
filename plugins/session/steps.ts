// Start-up is a sequence of steps that change something (an object in the cluster, a rule or file
// on the laptop). Each plugin calls `step()` right before such a change, after registering its
// undo. That gives two things:
// - a Ctrl-C during start-up stops at the next step, and the undo stack runs (no waiting for a
//   long start to finish first);
// - tests can fail or interrupt exactly the Nth step (KT_TEST_FAULT), to prove that every failure
//   point undoes everything (test/e2e/fault-matrix.test.ts). With KT_TEST_FAULT set, each step is
//   announced on stderr as "kt-step N: what", so a test learns how many steps a start has.
import { UserError } from '../cli/errors.ts';

export type Fault = { kind: 'fail' | 'interrupt'; step: number } | { kind: 'trace' };

/** `fail:N`, `interrupt:N`, or `trace` (announce steps, inject nothing). */
export function parseFault(text: string | undefined): Fault | undefined {
  if (!text) return undefined;
  if (text === 'trace') return { kind: 'trace' };
  const m = /^(fail|interrupt):([1-9]\d*)$/.exec(text);
  if (!m) throw new UserError(`KT_TEST_FAULT must be trace, fail:N or interrupt:N, not "${text}".`, 2);
  return { kind: m[1] as 'fail' | 'interrupt', step: Number(m[2]) };
}

export class InjectedFault extends UserError {
  constructor(n: number, what: string) {
    super(`injected failure at step ${n} (${what}).`);
  }
}

export class Interrupted extends UserError {
  constructor(sig: NodeJS.Signals) {
    super(`interrupted (${sig}); everything kt had changed was undone.`, 130);
  }
}

let fault: Fault | undefined;
let faultRead = false;
let count = 0;
let signalled: NodeJS.Signals | undefined;

/** Called by the signal handler: start-up stops at its next step or wait that checks throwIfInterrupted. */
export function noteSignal(sig: NodeJS.Signals): void {
  signalled ??= sig;
}

export function throwIfInterrupted(): void {
  if (signalled) throw new Interrupted(signalled);
}

/** Marks the next change; throws when the user interrupted, or when a test injects a fault here. */
export async function step(what: string): Promise<void> {
  if (!faultRead) { fault = parseFault(process.env.KT_TEST_FAULT); faultRead = true; }
  count++;
  if (fault) process.stderr.write(`kt-step ${count}: ${what}\n`);
  if (fault?.kind === 'fail' && fault.step === count) throw new InjectedFault(count, what);
  if (fault?.kind === 'interrupt' && fault.step === count) {
    // As a user's Ctrl-C would: the signal goes through the real handler.
    process.kill(process.pid, 'SIGINT');
    const end = Date.now() + 2000;
    while (!signalled && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
  }
  throwIfInterrupted();
}

/**
 * Runs changes at once, in the order given (so their steps keep their numbers), and waits for every
 * one of them before it fails with the first failure: what the others made is then known to the
 * undo, none still under way.
 */
export async function settleAll(changes: (() => Promise<void>)[]): Promise<void> {
  const results = await Promise.allSettled(changes.map((c) => c()));
  const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) throw failed.reason;
}

/** For tests of this module: the step count and the fault setting start over. */
export function resetSteps(): void {
  count = 0;
  faultRead = false;
}
