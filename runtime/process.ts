// The process life of an image's one Node process, shared by the shadow and the router: run main
// only when the module is the entry point, exit 1 on a crash or a failed start, and on SIGTERM or
// SIGINT close gracefully within a deadline (a second signal leaves at once).
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLogger, errorMessage, type Logger } from './log.ts';

/** Whether the module at metaUrl is what `node` was asked to run (the bundle included). */
export function isEntryPoint(metaUrl: string): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(metaUrl));
  } catch {
    return false;
  }
}

export interface Closable {
  close(): Promise<void>;
}

/**
 * Starts the process's service with `start`; `name` goes into the log lines. Until the service's
 * own configuration is read, logs go out at info with no extra fields.
 */
export async function runService<T extends Closable>(name: string, start: (log: Logger) => Promise<T>, deadlineMs: number): Promise<T> {
  const log = createLogger();
  process.on('uncaughtException', (err) => {
    log.error(`${name} crashed`, { error: err });
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    log.error(`${name} crashed`, { error: reason instanceof Error ? reason : String(reason) });
    process.exit(1);
  });

  let service: T;
  try {
    service = await start(log);
  } catch (err) {
    log.error(`${name} cannot start`, { error: errorMessage(err) });
    process.exit(1);
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(0);
    stopping = true;
    log.info(`${name} received signal`, { signal });
    setTimeout(() => process.exit(0), deadlineMs).unref();
    service.close().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error(`${name} close failed`, { error: errorMessage(err) });
        process.exit(0);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  return service;
}
