// Undo on exit: everything a session changes registers how to undo it here, before it makes the
// change, and it runs on normal exit, Ctrl-C, SIGTERM, SIGHUP, on a failure at any point of
// start-up and on an unexpected error, last registered first. A second Ctrl-C while undoing exits
// at once (what is left is then found by kt-clean).
import type { Logger } from '../cli/log.ts';
import { noteSignal } from './steps.ts';

type Undo = { what: string; fn: () => Promise<void> | void };

// Every lifecycle not yet closed: the command runner closes them before it reports an error, so
// no failure path, however it got there, leaves the changes behind.
const open = new Set<Lifecycle>();

/** Runs the undo stacks of every lifecycle still open (the command runner calls it on any exit). */
export async function closeOpenLifecycles(): Promise<void> {
  for (const l of [...open]) await l.close();
}

export class Lifecycle {
  readonly #undo: Undo[] = [];
  readonly #log: Logger;
  #closing: Promise<void> | undefined;
  #onSignal: ((sig: NodeJS.Signals) => void) | undefined;

  constructor(log: Logger) {
    this.#log = log;
    open.add(this);
  }

  /** Registers an undo step; returns a function that runs it early and unregisters it. */
  defer(what: string, fn: () => Promise<void> | void): () => Promise<void> {
    const item = { what, fn };
    this.#undo.push(item);
    return async () => {
      const i = this.#undo.indexOf(item);
      if (i >= 0) { this.#undo.splice(i, 1); await fn(); }
    };
  }

  /** Runs every undo step once, last first; errors are reported, not thrown. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      while (this.#undo.length > 0) {
        const u = this.#undo.pop()!;
        try {
          await u.fn();
        } catch (e) {
          this.#log.warn(`could not ${u.what}: ${(e as Error).message}`);
        }
      }
      open.delete(this);
    })();
    return this.#closing;
  }

  /** Resolves with the signal that asked the session to end. */
  waitForSignal(): Promise<NodeJS.Signals> {
    return new Promise((resolve) => {
      let count = 0;
      this.#onSignal = (sig) => {
        count++;
        if (count > 1) {
          this.#log.warn('interrupted again: exiting without finishing cleanup; run kubectl kt-clean to remove what is left');
          process.exit(130);
        }
        noteSignal(sig);
        resolve(sig);
      };
      for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.on(s, this.#onSignal);
    });
  }
}
