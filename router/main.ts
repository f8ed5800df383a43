// The router process: one per meshed Service.
//   node router/main.ts            (bundled in the image: node /app/router.cjs)
// Configuration: contract/index.ts ROUTER_ENV (KT_ROUTES_CONFIGMAP + KT_NAMESPACE, or
// KT_ROUTES_FILE; KT_LOG_LEVEL; the test-only KT_TEST_CONTRACT_VERSION), and for local runs
// KT_HEALTH_PORT and KT_LISTEN_HOST.
//
// Importing this module only exports startRouter; it runs when it is the process's entry point.
import { ROUTER_DRAIN, ROUTER_ENV } from '../contract/index.ts';
import { reportedContractVersion } from '../contract/version.ts';
import { createLogger } from '../runtime/log.ts';
import { isEntryPoint, runService } from '../runtime/process.ts';
import { parseRouterEnv } from './config.ts';
import { routeSourceFromEnv } from './route-source.ts';
import { startRouter } from './router.ts';

export { startRouter } from './router.ts';
export type { RouterHandle, RouterOptions, RouterPorts } from './router.ts';

// No top-level await: the image runs this bundled as CommonJS.
if (isEntryPoint(import.meta.url)) {
  void runService('router', async () => {
    const config = parseRouterEnv(process.env);
    const log = createLogger({ level: config.logLevel, fields: { component: 'router' } });
    const source = await routeSourceFromEnv(process.env, log);
    const router = await startRouter({
      source,
      log,
      logRequests: config.logLevel === 'debug',
      host: config.host,
      healthPort: config.healthPort,
      contractVersion: reportedContractVersion(process.env[ROUTER_ENV.testContractVersion]),
    });
    return { close: () => router.drain(ROUTER_DRAIN.lingerMs, ROUTER_DRAIN.graceMs) };
  }, ROUTER_DRAIN.deadlineMs);
}
