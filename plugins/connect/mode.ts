// What each kt-connect mode (socks, transparent, hosts) hands back once it runs on a connected
// session: lines for the banner, the environment for `kt-connect -- command`, and its undo.
export interface ModeHandle {
  /** Lines for the banner. */
  banner: string[];
  /** Environment for `kt-connect -- command`. */
  env: Record<string, string>;
  close(): Promise<void>;
}

/**
 * A mode's crash cleanup: undoes what its dead sessions left on this machine (kt-clean runs it);
 * with dryRun it only says what it would undo. One line per thing undone.
 */
export type Cleaner = (dryRun: boolean) => Promise<string[]>;
