// The shadow's configuration: the contract's environment variables and Secret files, plus a few
// overrides (ports, paths, listen address) that let tests and local runs use free ports and temp
// directories.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { DEFAULT_CLUSTER_DOMAIN, SESSION_SECRET, SHADOW_ENV, SHADOW_PORT } from '../contract/index.ts';
import { reportedContractVersion } from '../contract/version.ts';
import { parseLogLevel } from '../runtime/log.ts';
import type { LogLevel } from '../runtime/log.ts';

/** Overrides beyond the contract; never set in the cluster. */
export const SHADOW_OVERRIDE_ENV = {
  sshPort: 'KT_SSH_PORT',
  dnsPort: 'KT_DNS_PORT',
  healthPort: 'KT_HEALTH_PORT',
  /** Directory holding the session Secret's files, instead of SESSION_SECRET.mountPath. */
  sessionDir: 'KT_SESSION_DIR',
  /** The resolver configuration to forward to, instead of /etc/resolv.conf. */
  resolvConf: 'KT_RESOLV_CONF',
  /** The address every listener binds; default all interfaces. */
  listenHost: 'KT_LISTEN_HOST',
} as const;

export const DEFAULT_RESOLV_CONF = '/etc/resolv.conf';

export interface ShadowPorts {
  ssh: number;
  dns: number;
  health: number;
}

export interface ShadowConfig {
  /** The session id (KT_SESSION), for logs; empty when unset. */
  session: string;
  /** The namespace the shadow runs in (KT_NAMESPACE), for logs; empty when unset. */
  namespace: string;
  clusterDomain: string;
  logLevel: LogLevel;
  sessionDir: string;
  resolvConfPath: string;
  /** Undefined: all interfaces. */
  host: string | undefined;
  ports: ShadowPorts;
  /** The contract version the shadow reports on its ping (the test-only knob, else its own). */
  contractVersion: string;
}

/** The session Secret's contents. */
export interface SessionFiles {
  /** The private host key, PEM/OpenSSH text. */
  hostKey: Buffer;
  /** The OpenSSH public key line of the one client key allowed in. */
  authorizedKey: string;
}

/** A configuration problem; `message` is one sentence a person can act on. */
export class ConfigError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConfigError';
  }
}

type Env = Readonly<Record<string, string | undefined>>;

function nonEmpty(env: Env, name: string): string | undefined {
  const value = env[name]?.trim();
  return value ? value : undefined;
}

function port(env: Env, name: string, fallback: number): number {
  const raw = nonEmpty(env, name);
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!/^\d+$/.test(raw) || value > 65535) {
    throw new ConfigError(`${name} must be a port number from 0 to 65535, not "${raw}"`);
  }
  return value;
}

/** Reads the configuration from the environment; throws ConfigError on a malformed value. */
export function parseShadowEnv(env: Env): ShadowConfig {
  const levelText = nonEmpty(env, SHADOW_ENV.logLevel);
  const logLevel = levelText === undefined ? 'info' : parseLogLevel(levelText);
  if (logLevel === undefined) {
    throw new ConfigError(`${SHADOW_ENV.logLevel} must be one of debug, info, warn, error, not "${levelText}"`);
  }
  const clusterDomain = (nonEmpty(env, SHADOW_ENV.clusterDomain) ?? DEFAULT_CLUSTER_DOMAIN).replace(/\.+$/, '');
  if (!/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/.test(clusterDomain)) {
    throw new ConfigError(`${SHADOW_ENV.clusterDomain} must be a DNS domain such as cluster.local, not "${clusterDomain}"`);
  }
  let contractVersion: string;
  try {
    contractVersion = reportedContractVersion(env[SHADOW_ENV.testContractVersion]);
  } catch (err) {
    throw new ConfigError(`${SHADOW_ENV.testContractVersion}: ${(err as Error).message}`);
  }
  return {
    contractVersion,
    session: nonEmpty(env, SHADOW_ENV.session) ?? '',
    namespace: nonEmpty(env, SHADOW_ENV.namespace) ?? '',
    clusterDomain: clusterDomain.toLowerCase(),
    logLevel,
    sessionDir: nonEmpty(env, SHADOW_OVERRIDE_ENV.sessionDir) ?? SESSION_SECRET.mountPath,
    resolvConfPath: nonEmpty(env, SHADOW_OVERRIDE_ENV.resolvConf) ?? DEFAULT_RESOLV_CONF,
    host: nonEmpty(env, SHADOW_OVERRIDE_ENV.listenHost),
    ports: {
      ssh: port(env, SHADOW_OVERRIDE_ENV.sshPort, SHADOW_PORT.ssh),
      dns: port(env, SHADOW_OVERRIDE_ENV.dnsPort, SHADOW_PORT.dns),
      health: port(env, SHADOW_OVERRIDE_ENV.healthPort, SHADOW_PORT.health),
    },
  };
}

async function readSecretFile(dir: string, key: string): Promise<Buffer> {
  const path = join(dir, key);
  try {
    return await readFile(path);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === 'ENOENT') {
      throw new ConfigError(`the session Secret has no "${key}": ${path} does not exist (is the Secret mounted at ${dir}?)`, {
        cause: err,
      });
    }
    throw new ConfigError(`cannot read ${path}: ${err instanceof Error ? err.message : String(err)}`, { cause: err });
  }
}

/** Reads the session Secret's files from `dir` (the mount path, or KT_SESSION_DIR). */
export async function readSessionFiles(dir: string): Promise<SessionFiles> {
  const [hostKey, authorized] = await Promise.all([
    readSecretFile(dir, SESSION_SECRET.hostKey),
    readSecretFile(dir, SESSION_SECRET.authorizedKey),
  ]);
  // The key is one line; tolerate a trailing newline, comments and blank lines around it.
  const authorizedKey = authorized
    .toString('utf8')
    .split(/\r?\n/)
    .map((line) => line.trim())
    .find((line) => line !== '' && !line.startsWith('#'));
  if (authorizedKey === undefined) {
    throw new ConfigError(`${join(dir, SESSION_SECRET.authorizedKey)} holds no public key line`);
  }
  if (hostKey.toString('utf8').trim() === '') {
    throw new ConfigError(`${join(dir, SESSION_SECRET.hostKey)} is empty`);
  }
  return { hostKey, authorizedKey };
}
