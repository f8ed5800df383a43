// The shadow as the image runs it: bundled into one CommonJS file (images/bundle.ts), started as
// its own process away from node_modules, configured by environment, stopped by SIGTERM.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, SESSION_SECRET, SSH_USER } from '../../../contract/index.ts';
import { httpGet, keyPair } from './fixtures.ts';

const { Client, utils } = ssh2;
const root = fileURLToPath(new URL('../../../', import.meta.url));

let dir: string;
let child: ChildProcess | undefined;
let output = '';
let ports: { ssh: number; dns: number; health: number };
const hostKeys = keyPair();
const clientKeys = keyPair();



beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kt-shadow-bundle-'));
  const bundle = join(dir, 'shadow.cjs');
  const built = spawnSync(process.execPath, [join(root, 'images/bundle.ts'), join(root, 'shadow/main.ts'), bundle], {
    cwd: root,
    encoding: 'utf8',
  });
  expect(built.status, built.stderr).toBe(0);

  writeFileSync(join(dir, SESSION_SECRET.hostKey), hostKeys.private);
  writeFileSync(join(dir, SESSION_SECRET.authorizedKey), `${clientKeys.public}\n`);
  // Port 1 on loopback: nothing answers; the DNS server is not exercised here.
  writeFileSync(join(dir, 'resolv.conf'), 'nameserver 127.0.0.1:1\nsearch demo.svc.cluster.local\noptions ndots:5 timeout:1 attempts:1\n');

  child = spawn(process.execPath, [bundle], {
    cwd: dir, // away from the repository's node_modules, as in the image
    env: {
      PATH: process.env.PATH,
      KT_SESSION: 'bundle-test',
      KT_SESSION_DIR: dir,
      KT_RESOLV_CONF: join(dir, 'resolv.conf'),
      KT_LISTEN_HOST: '127.0.0.1',
      KT_SSH_PORT: '0',
      KT_DNS_PORT: '0',
      KT_HEALTH_PORT: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  ports = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the bundle did not get ready:\n${output}`)), 15_000);
    const check = (): void => {
      for (const line of output.split('\n')) {
        if (!line.startsWith('{')) continue;
        const record = JSON.parse(line) as { msg?: string; ports?: typeof ports };
        if (record.msg === 'shadow ready' && record.ports) {
          clearTimeout(timer);
          child?.stdout?.off('data', check);
          resolve(record.ports);
        }
      }
    };
    child?.stdout?.on('data', check);
    child?.once('exit', (code) => reject(new Error(`the bundle exited with ${code}:\n${output}`)));
  });
}, 60_000);

afterAll(() => {
  if (child && child.exitCode === null && child.pid !== undefined) process.kill(child.pid, 'SIGKILL');
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('shadow bundle', () => {
  it('logs JSON lines and answers /healthz and /readyz', async () => {
    expect(await httpGet(ports.health, '/healthz')).toBe(200);
    expect(await httpGet(ports.health, '/readyz')).toBe(200);
    const ready = output.split('\n').find((line) => line.includes('"shadow ready"'));
    expect(JSON.parse(ready ?? '{}')).toMatchObject({ level: 'info', session: 'bundle-test' });
  });

  it('serves SSH with the pure-JS crypto fallback: kt-ping answers pong', async () => {
    const hostKey = utils.parseKey(hostKeys.public);
    if (hostKey instanceof Error) throw hostKey;
    const blob = hostKey.getPublicSSH();
    const client = new Client();
    const pong = await new Promise<string>((resolve, reject) => {
      client.once('error', reject);
      client.once('ready', () =>
        client.exec('kt-ping', (err, channel) => {
          if (err) return reject(err);
          let text = '';
          channel.on('data', (chunk: Buffer) => (text += chunk.toString()));
          channel.on('close', () => resolve(text));
        }),
      );
      client.connect({
        host: '127.0.0.1',
        port: ports.ssh,
        username: SSH_USER,
        privateKey: clientKeys.private,
        hostVerifier: (key: Buffer) => key.equals(blob),
      });
    });
    client.end();
    expect(pong).toBe(`pong ${CONTRACT_VERSION}\n`);
  });

  it('stops cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child?.once('exit', (code) => resolve(code)));
    expect(child?.pid).toBeDefined();
    process.kill(child!.pid!, 'SIGTERM');
    expect(await exited).toBe(0);
    expect(output).toContain('"shadow stopped"');
  });
});
