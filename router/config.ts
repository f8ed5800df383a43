// The router's configuration from its environment: the contract's ROUTER_ENV plus two overrides
// for local runs and tests (never set in the cluster).
import { ROUTER_ENV, ROUTER_PORT } from '../contract/index.ts';
import { parseLogLevel } from '../runtime/log.ts';
import type { LogLevel } from '../runtime/log.ts';

export const ROUTER_OVERRIDE_ENV = {
  /** The health port instead of ROUTER_PORT.health. */
  healthPort: 'KT_HEALTH_PORT',
  /** The address every listener binds; default all interfaces. */
  listenHost: 'KT_LISTEN_HOST',
} as const;

export interface RouterConfig {
  logLevel: LogLevel;
  host: string | undefined;
  healthPort: number;
}

/** A configuration problem; `message` is one sentence a person can act on. */
export class RouterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouterConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

export function parseRouterEnv(env: Env): RouterConfig {
  const levelText = env[ROUTER_ENV.logLevel]?.trim();
  const logLevel = levelText ? parseLogLevel(levelText) : 'info';
  if (logLevel === undefined) throw new RouterConfigError(`${ROUTER_ENV.logLevel} must be one of debug, info, warn, error, not "${levelText}"`);
  const portText = env[ROUTER_OVERRIDE_ENV.healthPort]?.trim();
  let healthPort: number = ROUTER_PORT.health;
  if (portText) {
    healthPort = Number(portText);
    if (!/^\d+$/.test(portText) || healthPort > 65535) {
      throw new RouterConfigError(`${ROUTER_OVERRIDE_ENV.healthPort} must be a port number from 0 to 65535, not "${portText}"`);
    }
  }
  return { logLevel, host: env[ROUTER_OVERRIDE_ENV.listenHost]?.trim() || undefined, healthPort };
}
