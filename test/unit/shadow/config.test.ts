import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, SESSION_SECRET, SHADOW_PORT } from '../../../contract/index.ts';
import { ConfigError, DEFAULT_RESOLV_CONF, parseShadowEnv, readSessionFiles } from '../../../shadow/config.ts';

describe('parseShadowEnv', () => {
  it('uses the contract when nothing is set', () => {
    expect(parseShadowEnv({})).toEqual({
      contractVersion: CONTRACT_VERSION,
      session: '',
      namespace: '',
      clusterDomain: 'cluster.local',
      logLevel: 'info',
      sessionDir: SESSION_SECRET.mountPath,
      resolvConfPath: DEFAULT_RESOLV_CONF,
      host: undefined,
      ports: { ssh: SHADOW_PORT.ssh, dns: SHADOW_PORT.dns, health: SHADOW_PORT.health },
    });
  });

  it('reads the contract variables and the overrides', () => {
    const config = parseShadowEnv({
      KT_SESSION: 'abc123',
      KT_NAMESPACE: 'demo',
      KT_CLUSTER_DOMAIN: 'Example.Internal.',
      KT_LOG_LEVEL: 'DEBUG',
      KT_SSH_PORT: '0',
      KT_DNS_PORT: '15353',
      KT_HEALTH_PORT: ' 18081 ',
      KT_SESSION_DIR: '/tmp/session',
      KT_RESOLV_CONF: '/tmp/resolv.conf',
      KT_LISTEN_HOST: '127.0.0.1',
      KT_TEST_CONTRACT_VERSION: '2.1',
    });
    expect(config).toEqual({
      contractVersion: '2.1',
      session: 'abc123',
      namespace: 'demo',
      clusterDomain: 'example.internal',
      logLevel: 'debug',
      sessionDir: '/tmp/session',
      resolvConfPath: '/tmp/resolv.conf',
      host: '127.0.0.1',
      ports: { ssh: 0, dns: 15353, health: 18081 },
    });
  });

  it('treats empty values as unset', () => {
    expect(parseShadowEnv({ KT_SSH_PORT: '', KT_SESSION_DIR: '  ', KT_LOG_LEVEL: '' }).ports.ssh).toBe(SHADOW_PORT.ssh);
  });

  it.each([['-1'], ['65536'], ['22a'], ['2.5']])('rejects the port "%s"', (value) => {
    expect(() => parseShadowEnv({ KT_DNS_PORT: value })).toThrow(ConfigError);
    expect(() => parseShadowEnv({ KT_DNS_PORT: value })).toThrow(/KT_DNS_PORT must be a port number/);
  });

  it('rejects an unknown log level and a malformed cluster domain', () => {
    expect(() => parseShadowEnv({ KT_LOG_LEVEL: 'verbose' })).toThrow(/KT_LOG_LEVEL must be one of/);
    expect(() => parseShadowEnv({ KT_CLUSTER_DOMAIN: 'bad domain' })).toThrow(/KT_CLUSTER_DOMAIN/);
    expect(() => parseShadowEnv({ KT_TEST_CONTRACT_VERSION: '2' })).toThrow(/KT_TEST_CONTRACT_VERSION: .*MAJOR\.MINOR/);
  });
});

describe('readSessionFiles', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  const write = (files: Record<string, string>): string => {
    dir = mkdtempSync(join(tmpdir(), 'kt-shadow-config-'));
    for (const [name, text] of Object.entries(files)) writeFileSync(join(dir, name), text);
    return dir;
  };

  it('reads the host key and the authorized key line', async () => {
    const path = write({
      [SESSION_SECRET.hostKey]: '-----BEGIN OPENSSH PRIVATE KEY-----\nxyz\n-----END OPENSSH PRIVATE KEY-----\n',
      [SESSION_SECRET.authorizedKey]: '# the session key\n\nssh-ed25519 AAAAC3 kt@laptop\n',
    });
    const files = await readSessionFiles(path);
    expect(files.hostKey.toString()).toContain('BEGIN OPENSSH PRIVATE KEY');
    expect(files.authorizedKey).toBe('ssh-ed25519 AAAAC3 kt@laptop');
  });

  it('names the missing file and the mount', async () => {
    const path = write({ [SESSION_SECRET.hostKey]: 'key' });
    await expect(readSessionFiles(path)).rejects.toThrow(ConfigError);
    await expect(readSessionFiles(path)).rejects.toThrow(`the session Secret has no "${SESSION_SECRET.authorizedKey}"`);
  });

  it('rejects an authorized key file with no key in it', async () => {
    const path = write({ [SESSION_SECRET.hostKey]: 'key', [SESSION_SECRET.authorizedKey]: '# nothing\n\n' });
    await expect(readSessionFiles(path)).rejects.toThrow(/holds no public key line/);
  });
});
