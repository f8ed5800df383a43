// The router as the image runs it: bundled into one CommonJS file (images/bundle.ts), started as
// its own process away from node_modules, configured by environment (a routes file), stopped by
// SIGTERM. The router listens on 127.0.0.1, the echo backend (the default target) on ::1, on the
// same port.
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTER_ENV, ROUTER_STATUS } from '../../../contract/index.ts';
import type { RouterStatus, RouteTable } from '../../../contract/index.ts';
import { grpcUnary, httpGet } from '../../workloads/echo/client.ts';
import { startEcho } from '../../workloads/echo/echo.ts';
import type { EchoServers } from '../../workloads/echo/echo.ts';
import { silentLogger } from '../../workloads/echo/log.ts';

const root = fileURLToPath(new URL('../../../', import.meta.url));

let dir: string;
let child: ChildProcess | undefined;
let output = '';
let echo: EchoServers;
let httpPort: number;
let grpcPort: number;
let healthPort: number;
/** A table port nothing listens on behind the router. */
let deadPort: number;

/** A port free on both loopback addresses. */
async function freePort(): Promise<number> {
  for (;;) {
    const server = createServer().listen(0, '127.0.0.1');
    await once(server, 'listening');
    const address = server.address();
    const port = typeof address === 'object' && address !== null ? address.port : 0;
    const v6 = createServer().listen(port, '::1');
    const ok = await Promise.race([once(v6, 'listening').then(() => true), once(v6, 'error').then(() => false)]);
    server.close();
    if (ok) {
      v6.close();
      return port;
    }
  }
}

function lines(): Record<string, unknown>[] {
  return output
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

async function waitForLine(match: (line: Record<string, unknown>) => boolean, timeoutMs = 15_000): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = lines().find(match);
    if (line) return line;
    if (Date.now() > deadline) throw new Error(`no such log line within ${timeoutMs} ms:\n${output}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'kt-router-bundle-'));
  const bundle = join(dir, 'router.cjs');
  const built = spawnSync(process.execPath, [join(root, 'images/bundle.ts'), join(root, 'router/main.ts'), bundle], { cwd: root, encoding: 'utf8' });
  expect(built.status, built.stderr).toBe(0);

  httpPort = await freePort();
  grpcPort = await freePort();
  healthPort = await freePort();
  deadPort = await freePort();
  echo = await startEcho({ host: '::1', httpPort, grpcPort, tcpPort: 0, pod: 'bundle-default', log: silentLogger });
  const table: RouteTable = {
    header: 'kt-version',
    ports: [
      { port: httpPort, protocol: 'http' },
      { port: grpcPort, protocol: 'http' },
      { port: deadPort, protocol: 'http' },
    ],
    defaultTarget: '::1',
    routes: [{ version: 'gone', target: '::1', session: 'sess-x', user: 'xavier' }],
  };
  writeFileSync(join(dir, 'routes.json'), JSON.stringify(table));

  child = spawn(process.execPath, [bundle], {
    cwd: dir, // away from the repository's node_modules, as in the image
    env: {
      PATH: process.env.PATH,
      KT_ROUTES_FILE: join(dir, 'routes.json'),
      KT_LISTEN_HOST: '127.0.0.1',
      KT_HEALTH_PORT: String(healthPort),
      KT_LOG_LEVEL: 'debug',
      // The test-only knob: the bundle reports this contract version instead of its own.
      [ROUTER_ENV.testContractVersion]: '7.3',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString()));
  await waitForLine((l) => l.msg === 'listening' && l.port === grpcPort);
  await waitForLine((l) => l.msg === 'listening' && l.port === httpPort);
});

afterAll(async () => {
  if (child && child.exitCode === null) {
    child.kill('SIGKILL');
    await once(child, 'exit');
  }
  await echo?.close(200);
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('the bundled router', () => {
  it('is ready and serves its table', async () => {
    const ready = await httpGet(`http://127.0.0.1:${healthPort}/readyz`);
    expect(ready.status).toBe(200);
    const routes = JSON.parse((await httpGet(`http://127.0.0.1:${healthPort}${ROUTER_STATUS.path}`)).text) as RouterStatus;
    expect(routes.routes[0]?.version).toBe('gone');
    expect(routes[ROUTER_STATUS.versionField]).toBe('7.3');
  });

  it('routes HTTP and gRPC, and logs each request at debug', async () => {
    expect((await httpGet(`http://127.0.0.1:${httpPort}/hi`)).body?.pod).toBe('bundle-default');
    expect((await grpcUnary(`127.0.0.1:${grpcPort}`, 'hi')).pod).toBe('bundle-default');
    const failed = await httpGet(`http://127.0.0.1:${deadPort}/hi`, { 'kt-version': 'gone' });
    expect(failed.status).toBe(502);
    expect(failed.text).toBe(`kt router: version "gone" (session sess-x by xavier) unreachable at [::1]:${deadPort}: ECONNREFUSED\n`);
    await waitForLine((l) => l.msg === 'request' && l.path === '/hi' && l.status === 200);
    await waitForLine((l) => l.msg === 'backend unreachable' && l.version === 'gone');
  });

  it('follows the routes file', async () => {
    const next: RouteTable = {
      header: 'kt-version',
      ports: [{ port: httpPort, protocol: 'http' }],
      defaultTarget: '::1',
      routes: [],
    };
    writeFileSync(join(dir, 'routes.next'), JSON.stringify(next));
    renameSync(join(dir, 'routes.next'), join(dir, 'routes.json'));
    const changed = await waitForLine((l) => l.msg === 'route table changed');
    expect(changed).toMatchObject({
      removed: [{ version: 'gone' }],
      portsRemoved: [
        { port: grpcPort, protocol: 'http' },
        { port: deadPort, protocol: 'http' },
      ],
    });
    expect((await httpGet(`http://127.0.0.1:${httpPort}/hi`, { 'kt-version': 'gone' })).body?.pod).toBe('bundle-default');
  });

  it('stops promptly on SIGTERM', async () => {
    const exited = once(child!, 'exit');
    const started = Date.now();
    child!.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    expect(code).toBe(0);
    expect(Date.now() - started).toBeLessThan(6000);
    await waitForLine((l) => l.msg === 'router stopped');
  });
});
