// The router process: one per meshed Service.
//   node router/main.ts            (bundled in the image: node /app/router.cjs)
// Configuration: contract/index.ts ROUTER_ENV (KT_ROUTES_CONFIGMAP + KT_NAMESPACE, or
// KT_ROUTES_FILE; KT_LOG_LEVEL), and for local runs KT_HEALTH_PORT and KT_LISTEN_HOST.
//
// Importing this module only exports startRouter; it runs when it is the process's entry point.
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createLogger, errorMessage } from '../shadow/log.ts';
import { parseRouterEnv } from './config.ts';
import { routeSourceFromEnv } from './route-source.ts';
import { startRouter } from './router.ts';
import type { RouterHandle } from './router.ts';

export { startRouter } from './router.ts';
export type { RouterHandle, RouterOptions, RouterPorts } from './router.ts';

/** Shutdown gives open connections this long, and the process exits by SHUTDOWN_DEADLINE_MS regardless. */
const GRACE_MS = 5000;
const SHUTDOWN_DEADLINE_MS = 8000;

function isEntryPoint(): boolean {
  const entry = process.argv[1];
  if (entry === undefined) return false;
  try {
    return realpathSync(entry) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

// No top-level await: the image runs this bundled as CommonJS.
if (isEntryPoint()) void main();

async function main(): Promise<void> {
  const bootLog = createLogger();
  process.on('uncaughtException', (err) => {
    bootLog.error('router crashed', { error: err });
    process.exit(1);
  });
  process.on('unhandledRejection', (reason) => {
    bootLog.error('router crashed', { error: reason instanceof Error ? reason : String(reason) });
    process.exit(1);
  });

  let router: RouterHandle;
  try {
    const config = parseRouterEnv(process.env);
    const log = createLogger({ level: config.logLevel, fields: { component: 'router' } });
    const source = await routeSourceFromEnv(process.env, log);
    router = await startRouter({
      source,
      log,
      logRequests: config.logLevel === 'debug',
      host: config.host,
      healthPort: config.healthPort,
    });
  } catch (err) {
    bootLog.error('router cannot start', { error: errorMessage(err) });
    process.exit(1);
  }

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(0); // a second signal: leave now
    stopping = true;
    bootLog.info('router received signal', { signal });
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
    router.close(GRACE_MS).then(
      () => process.exit(0),
      (err: unknown) => {
        bootLog.error('router close failed', { error: errorMessage(err) });
        process.exit(0);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
