// Benchmark of the mesh router against nginx doing the same job the way KT Connect's router did
// (an `if ($http_kt_version = "A")` location, upstream keepalive), and against the backend
// reached directly. Everything on loopback; wrk (keep-alive, 2 threads, 32 connections) measures
// requests/s and latency percentiles. Same CPU budget for both proxies: the router and nginx
// (one worker) are pinned to CPU 1, the backend and wrk to CPU 0.
//   node bench/router.ts
// Environment: KT_BENCH_SECONDS (8) per measured run, KT_BENCH_ROUNDS (1) runs per target (the
// median is reported), KT_BENCH_PROFILE=1 writes a CPU profile of the router (--cpu-prof).
// Needs wrk, nginx and taskset (Debian: apt-get install -y wrk nginx).
// The backend is bench/tools/router-backend.ts (a minimal keep-alive Node HTTP server), two
// instances on CPU 0: "a" (developer A's version) and "default" (the real pods).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RouteTable } from '../contract/index.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const SECONDS = Number(process.env.KT_BENCH_SECONDS ?? 8);
const ROUNDS = Number(process.env.KT_BENCH_ROUNDS ?? 1);
const PROFILE = process.env.KT_BENCH_PROFILE === '1';
const HOST = '127.0.0.1';

for (const tool of ['wrk', 'nginx', 'taskset']) {
  const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    console.error(`bench: ${tool} is needed (Debian: apt-get install -y wrk nginx; taskset is in util-linux).`);
    process.exit(1);
  }
}

const children: ChildProcess[] = [];
const dir = mkdtempSync(join(tmpdir(), 'kt-bench-router-'));

function start(cpu: number, command: string, args: string[]): ChildProcess {
  const child = spawn('taskset', ['-c', String(cpu), command, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.push(child);
  return child;
}

/** The first stdout line of a child that parses as JSON. */
async function firstJsonLine<T>(child: ChildProcess, what: string, timeoutMs = 20_000): Promise<T> {
  let out = '';
  let err = '';
  child.stderr?.on('data', (chunk: Buffer) => (err += chunk.toString()));
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${what} did not start:\n${err}`)), timeoutMs);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}):\n${err}`)));
    child.stdout?.on('data', (chunk: Buffer) => {
      out += chunk.toString();
      for (const line of out.split('\n')) {
        if (!line.startsWith('{')) continue;
        clearTimeout(timer);
        resolve(JSON.parse(line) as T);
        return;
      }
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, HOST);
  await once(server, 'listening');
  const { port } = server.address() as AddressInfo;
  server.close();
  await once(server, 'close');
  return port;
}

/** One GET; resolves with the status and the serving backend. */
function probe(port: number, headers: Record<string, string>): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ host: HOST, port, path: '/', headers }, (res) => {
      res.resume();
      res.on('end', () => resolve(`${res.statusCode} ${String(res.headers['x-echo-pod'])}`));
    });
    req.on('error', reject);
    req.end();
  });
}

async function waitFor(what: string, check: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check().catch(() => false))) {
    if (Date.now() > deadline) throw new Error(`${what} did not come up`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface WrkResult {
  rps: number;
  p50: number;
  p99: number;
  errors: string;
}

function micros(text: string): number {
  const m = /^([\d.]+)(us|ms|s|m)$/.exec(text);
  if (!m) throw new Error(`wrk: cannot read the latency "${text}"`);
  const scale = { us: 1, ms: 1000, s: 1_000_000, m: 60_000_000 }[m[2] as 'us' | 'ms' | 's' | 'm'];
  return Number(m[1]) * scale;
}

async function wrk(port: number, seconds: number, header: string | undefined): Promise<WrkResult> {
  const args = ['-c', '0', 'wrk', '-t2', '-c32', `-d${seconds}s`, '--latency'];
  if (header) args.push('-H', header);
  args.push(`http://${HOST}:${port}/`);
  const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`wrk failed (${code}):\n${out}`);
  const rps = /Requests\/sec:\s+([\d.]+)/.exec(out)?.[1];
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1];
  if (!rps || !p50 || !p99) throw new Error(`wrk: unexpected output:\n${out}`);
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses:.*/.exec(out)?.[0]].filter(Boolean).join('; ');
  return { rps: Number(rps), p50: micros(p50), p99: micros(p99), errors };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  // Backends on CPU 0.
  const backendPorts = await firstJsonLine<{ a: number; default: number }>(
    start(0, process.execPath, [join(root, 'bench/tools/router-backend.ts'), 'a', 'default']),
    'the backend',
  );

  // The router on CPU 1.
  const routerPort = await freePort();
  const healthPort = await freePort();
  const table: RouteTable = {
    header: 'kt-version',
    ports: [{ port: routerPort, protocol: 'http' }],
    defaultTarget: 'default.bench.svc.cluster.local',
    routes: [{ version: 'A', target: 'a.bench.svc.cluster.local', session: 'bench', user: 'bench' }],
  };
  writeFileSync(join(dir, 'routes.json'), JSON.stringify(table));
  const dial = {
    'default.bench.svc.cluster.local': { [routerPort]: backendPorts.default },
    'a.bench.svc.cluster.local': { [routerPort]: backendPorts.a },
  };
  const profileDir = join(dir, 'profile');
  const nodeArgs = PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : [];
  const router = start(1, process.execPath, [
    ...nodeArgs,
    join(root, 'bench/tools/router-run.ts'),
    join(dir, 'routes.json'),
    String(healthPort),
    JSON.stringify(dial),
  ]);
  await firstJsonLine(router, 'the router');

  // nginx on CPU 1, configured like KT Connect's router.
  const nginxPort = await freePort();
  const prefix = join(dir, 'nginx');
  mkdirSync(join(prefix, 'logs'), { recursive: true });
  mkdirSync(join(prefix, 'tmp'), { recursive: true });
  writeFileSync(
    join(prefix, 'nginx.conf'),
    `daemon off;
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/tmp/body;
  proxy_temp_path ${prefix}/tmp/proxy;
  fastcgi_temp_path ${prefix}/tmp/fastcgi;
  uwsgi_temp_path ${prefix}/tmp/uwsgi;
  scgi_temp_path ${prefix}/tmp/scgi;
  upstream a { server ${HOST}:${backendPorts.a}; keepalive 64; }
  upstream default { server ${HOST}:${backendPorts.default}; keepalive 64; }
  server {
    listen ${HOST}:${nginxPort};
    location / {
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $host;
      if ($http_kt_version = "A") {
        proxy_pass http://a;
      }
      proxy_pass http://default;
    }
  }
}
`,
  );
  const nginx = start(1, 'nginx', ['-c', join(prefix, 'nginx.conf'), '-p', prefix, '-e', join(prefix, 'logs/error.log')]);
  nginx.stderr?.on('data', (chunk: Buffer) => process.stderr.write(`nginx: ${chunk.toString()}`));
  await waitFor('nginx', async () => (await probe(nginxPort, {})).startsWith('200'));

  // Both proxies route the same way.
  for (const [name, port] of [['router', routerPort], ['nginx', nginxPort]] as const) {
    const routed = await probe(port, { 'kt-version': 'A' });
    const fallback = await probe(port, {});
    if (routed !== '200 a' || fallback !== '200 default') throw new Error(`${name} routes wrongly: A -> ${routed}, none -> ${fallback}`);
  }

  const targets = [
    { name: 'direct', port: backendPorts.a },
    { name: 'router', port: routerPort },
    { name: 'nginx', port: nginxPort },
  ] as const;
  const header = 'kt-version: A';
  const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      await wrk(target.port, 2, header); // warm-up (JIT, pools)
      const result = await wrk(target.port, SECONDS, header);
      results.get(target.name)!.push(result);
      console.error(`bench: ${target.name} round ${round + 1}: ${Math.round(result.rps)} req/s, p50 ${result.p50} us, p99 ${result.p99} us${result.errors ? `, ${result.errors}` : ''}`);
    }
  }

  const summary = targets.map((t) => {
    const runs = results.get(t.name)!;
    return {
      name: t.name,
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      errors: runs.map((r) => r.errors).filter(Boolean).join(' | '),
    };
  });
  const [direct, viaRouter, viaNginx] = summary as [(typeof summary)[number], (typeof summary)[number], (typeof summary)[number]];
  const ms = (us: number): string => `${(us / 1000).toFixed(3)} ms`;
  const lines = [
    `router benchmark: wrk -t2 -c32 -d${SECONDS}s keep-alive, header "${header}", ${ROUNDS} round(s), median; backend bench/tools/router-backend.ts`,
    `CPU: router and nginx (1 worker) on CPU 1; backend and wrk on CPU 0`,
    '',
    'target   req/s     vs direct   p50         p99         added p50   added p99',
  ];
  for (const s of summary) {
    lines.push(
      [
        s.name.padEnd(8),
        String(Math.round(s.rps)).padStart(7),
        `${(s.rps / direct.rps).toFixed(2)}x`.padStart(11),
        ms(s.p50).padStart(11),
        ms(s.p99).padStart(11),
        (s === direct ? '-' : ms(s.p50 - direct.p50)).padStart(11),
        (s === direct ? '-' : ms(s.p99 - direct.p99)).padStart(11),
      ].join(' ') + (s.errors ? `   (${s.errors})` : ''),
    );
  }
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  lines.push(
    '',
    `router / nginx: req/s ${ratio(viaRouter.rps, viaNginx.rps)}, added p50 ${ratio(viaRouter.p50 - direct.p50, viaNginx.p50 - direct.p50)}, added p99 ${ratio(viaRouter.p99 - direct.p99, viaNginx.p99 - direct.p99)}`,
  );
  console.log(lines.join('\n'));

  if (PROFILE) {
    router.kill('SIGTERM');
    await once(router, 'exit');
    const keep = mkdtempSync(join(tmpdir(), 'kt-router-profile-'));
    for (const file of readdirSync(profileDir)) {
      spawnSync('cp', [join(profileDir, file), keep]);
      console.log(`router CPU profile: ${join(keep, file)}`);
    }
  }
} finally {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
  await Promise.all(children.map((c) => (c.exitCode === null && c.signalCode === null ? once(c, 'exit') : undefined)));
  rmSync(dir, { recursive: true, force: true });
}
