// Benchmark of the mesh router against nginx doing the same job the way KT Connect's router did
// (an `if ($http_kt_version = "A")` location, upstream keepalive), and against the backend
// reached directly. Everything on loopback; wrk (keep-alive, 2 threads, 32 connections) measures
// requests/s and latency percentiles. Same CPU budget for both proxies: the router and nginx
// (one worker) are pinned to CPU 1, the backend and wrk to CPU 0.
//   node bench/router.ts
// Besides wall-clock figures it reports each proxy's CPU time per request (from /proc), which
// holds up better than requests/s on a machine shared with other work.
// The router runs twice: with its HTTP/1.1 fast path on raw sockets (router/http1/http1-fast.ts, the
// default, "router") and with the node:http path (router/forward.ts, "router-native"), to show
// what the fast path buys.
// Environment: KT_BENCH_SECONDS (6) per measured run, KT_BENCH_ROUNDS (3) runs per target,
// interleaved (medians are reported), KT_BENCH_PROFILE=1 writes a CPU profile of the router
// (--cpu-prof).
// Then a fixed-rate phase: h2load (32 HTTP/1.1 connections, each paced to an equal share of
// half of nginx's maximum requests/s from the first phase) sends the same load to the backend,
// the router and nginx, and every request's latency is read from its log. Added latency is only
// meaningful below saturation: under wrk's closed loop, p99 is mostly queueing behind whatever
// else the two cores run, for nginx as much as for the router.
// Environment: KT_BENCH_RATE_FRACTION (0.5) of nginx's req/s for the fixed-rate phase.
// Needs wrk, h2load, nginx and taskset (Debian: apt-get install -y wrk nghttp2-client nginx).
// The backend is bench/tools/router-backend.ts (a minimal keep-alive Node HTTP server), two
// instances on CPU 0: "a" (developer A's version) and "default" (the real pods).
import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { RouteTable } from '../contract/index.ts';

const root = fileURLToPath(new URL('../', import.meta.url));
const SECONDS = Number(process.env.KT_BENCH_SECONDS ?? 6);
const ROUNDS = Number(process.env.KT_BENCH_ROUNDS ?? 3);
const PROFILE = process.env.KT_BENCH_PROFILE === '1';
const HOST = '127.0.0.1';

const RATE_FRACTION = Number(process.env.KT_BENCH_RATE_FRACTION ?? 0.5);
/** Connections of the fixed-rate phase (as wrk's). */
const RATE_CONNECTIONS = 32;

for (const tool of ['wrk', 'h2load', 'nginx', 'taskset']) {
  const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' });
  if (found.status !== 0) {
    console.error(`bench: ${tool} is needed (Debian: apt-get install -y wrk nghttp2-client nginx; taskset is in util-linux).`);
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
  requests: number;
  p50: number;
  p99: number;
  errors: string;
}

const CLOCK_TICK_US = 1_000_000 / Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim() || 100);

/** CPU time (user + system, all threads) of a process and its children, in microseconds. */
function cpuMicros(pid: number | undefined): number {
  if (pid === undefined) return 0;
  const stat = (p: string): string[] | undefined => {
    try {
      const text = readFileSync(`/proc/${p}/stat`, 'utf8');
      // Fields after the command name, which is in parentheses and may contain spaces.
      return text.slice(text.lastIndexOf(')') + 2).split(' ');
    } catch {
      return undefined;
    }
  };
  let ticks = 0;
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const fields = stat(entry);
    // fields[1] is the parent pid, fields[11] and [12] are utime and stime.
    if (fields && (entry === String(pid) || fields[1] === String(pid))) ticks += Number(fields[11]) + Number(fields[12]);
  }
  return ticks * CLOCK_TICK_US;
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
  const requests = /(\d+) requests in/.exec(out)?.[1];
  const p50 = /^\s+50%\s+(\S+)/m.exec(out)?.[1];
  const p99 = /^\s+99%\s+(\S+)/m.exec(out)?.[1];
  if (!rps || !requests || !p50 || !p99) throw new Error(`wrk: unexpected output:\n${out}`);
  const errors = [/Socket errors:.*/.exec(out)?.[0], /Non-2xx or 3xx responses:.*/.exec(out)?.[0]].filter(Boolean).join('; ');
  return { rps: Number(rps), requests: Number(requests), p50: micros(p50), p99: micros(p99), errors };
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface RateResult {
  requests: number;
  p50: number;
  p99: number;
  p999: number;
  errors: string;
}

/**
 * `rate` requests/s in all for `seconds` (after 1 s of warm-up) from h2load on CPU 0; latencies
 * (microseconds, request sent to response complete) from its per-request log.
 */
async function fixedRate(port: number, seconds: number, rate: number, header: string): Promise<RateResult> {
  const log = join(dir, 'h2load.log');
  rmSync(log, { force: true });
  const perConnection = Math.max(1, Math.round(rate / RATE_CONNECTIONS));
  const args = ['-c', '0', 'h2load', '--h1', '-t', '1', '-c', String(RATE_CONNECTIONS), '--rps', String(perConnection)];
  args.push('-D', String(seconds), '--warm-up-time', '1', '-H', header, '--log-file', log, `http://${HOST}:${port}/`);
  const child = spawn('taskset', args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const [code] = (await once(child, 'exit')) as [number | null];
  if (code !== 0) throw new Error(`h2load failed (${code}):\n${out}`);
  // Rows: start time (us since the epoch), status, microseconds to the end of the response.
  const rows = readFileSync(log, 'utf8').trim().split('\n').map((line) => line.split('\t'));
  const latencies = rows.map((r) => Number(r[2])).sort((a, b) => a - b);
  if (latencies.length === 0) throw new Error(`h2load: no request logged:\n${out}`);
  const at = (q: number): number => latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * q))]!;
  const failed = rows.filter((r) => r[1] !== '200').length;
  const notDone = /requests: \d+ total, \d+ started, \d+ done, \d+ succeeded, (\d+) failed, (\d+) errored/.exec(out);
  const errors = [failed > 0 ? `${failed} non-200` : '', notDone && notDone[1] !== '0' ? `${notDone[1]} failed` : ''].filter(Boolean).join(', ');
  return { requests: latencies.length, p50: at(0.5), p99: at(0.99), p999: at(0.999), errors };
}

try {
  // Backends on CPU 0.
  const backendPorts = await firstJsonLine<{ a: number; default: number }>(
    start(0, process.execPath, [join(root, 'bench/tools/router-backend.ts'), 'a', 'default']),
    'the backend',
  );

  // The router on CPU 1, twice: the fast path (default) and the node:http path.
  const routerPort = await freePort();
  const nativePort = await freePort();
  const table: RouteTable = {
    header: 'kt-version',
    ports: [
      { port: routerPort, protocol: 'http' },
      { port: nativePort, protocol: 'http' },
    ],
    defaultTarget: 'default.bench.svc.cluster.local',
    routes: [{ version: 'A', target: 'a.bench.svc.cluster.local', session: 'bench', user: 'bench' }],
  };
  writeFileSync(join(dir, 'routes.json'), JSON.stringify(table));
  const dial = {
    'default.bench.svc.cluster.local': { [routerPort]: backendPorts.default, [nativePort]: backendPorts.default },
    'a.bench.svc.cluster.local': { [routerPort]: backendPorts.a, [nativePort]: backendPorts.a },
  };
  // Each router listens on both table ports; each is measured on its own port only.
  const startRouter = async (forwarder: string, profileDir?: string): Promise<ChildProcess> => {
    const child = start(1, process.execPath, [
      ...(profileDir ? ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] : []),
      join(root, 'bench/tools/router-run.ts'),
      join(dir, `routes-${forwarder}.json`),
      String(await freePort()),
      JSON.stringify(dial),
      forwarder,
    ]);
    await firstJsonLine(child, `the router (${forwarder})`);
    return child;
  };
  writeFileSync(join(dir, 'routes-fast.json'), JSON.stringify({ ...table, ports: [table.ports[0]] }));
  writeFileSync(join(dir, 'routes-native.json'), JSON.stringify({ ...table, ports: [table.ports[1]] }));
  const profileDir = join(dir, 'profile');
  const router = await startRouter('fast', PROFILE ? profileDir : undefined);
  const routerNative = await startRouter('native');

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
  # As KT Connect's router template: one "if" per version, the origin otherwise; plus upstream
  # keepalive (Connection "" lets nginx reuse backend connections) and the client's Host kept,
  # as the kt router does.
  server {
    listen ${HOST}:${nginxPort};
    underscores_in_headers on;
    location / {
      proxy_redirect off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
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
  for (const [name, port] of [['router', routerPort], ['router-native', nativePort], ['nginx', nginxPort]] as const) {
    const routed = await probe(port, { 'kt-version': 'A' });
    const fallback = await probe(port, {});
    if (routed !== '200 a' || fallback !== '200 default') throw new Error(`${name} routes wrongly: A -> ${routed}, none -> ${fallback}`);
  }

  const backendPid = children[0]?.pid;
  const targets = [
    { name: 'direct', port: backendPorts.a, pid: backendPid },
    { name: 'router', port: routerPort, pid: router.pid },
    { name: 'router-native', port: nativePort, pid: routerNative.pid },
    { name: 'nginx', port: nginxPort, pid: nginx.pid },
  ] as const;
  const cpu = new Map<string, number[]>(targets.map((t) => [t.name, []]));
  const header = 'kt-version: A';
  const results = new Map<string, WrkResult[]>(targets.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      await wrk(target.port, 2, header); // warm-up (JIT, pools)
      const before = cpuMicros(target.pid);
      const result = await wrk(target.port, SECONDS, header);
      const perRequest = (cpuMicros(target.pid) - before) / result.requests;
      results.get(target.name)!.push(result);
      cpu.get(target.name)!.push(perRequest);
      console.error(
        `bench: ${target.name} round ${round + 1}: ${Math.round(result.rps)} req/s, p50 ${result.p50} us, p99 ${result.p99} us, ` +
          `${perRequest.toFixed(1)} us CPU/request${result.errors ? `, ${result.errors}` : ''}`,
      );
    }
  }

  const summary = targets.map((t) => {
    const runs = results.get(t.name)!;
    return {
      name: t.name,
      rps: median(runs.map((r) => r.rps)),
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      cpu: median(cpu.get(t.name)!),
      errors: runs.map((r) => r.errors).filter(Boolean).join(' | '),
    };
  });
  type Row = (typeof summary)[number];
  const [direct, viaRouter, viaNative, viaNginx] = summary as [Row, Row, Row, Row];
  const ms = (us: number): string => `${(us / 1000).toFixed(3)} ms`;
  const lines = [
    `router benchmark: wrk -t2 -c32 -d${SECONDS}s keep-alive, header "${header}", ${ROUNDS} round(s), median; backend bench/tools/router-backend.ts`,
    `CPU: router and nginx (1 worker) on CPU 1; backend and wrk on CPU 0. CPU/req: the process's own CPU time per request`,
    `(for "direct" that is the backend's).`,
    '',
    'target          req/s  vs direct         p50         p99   added p50   added p99   CPU/req',
  ];
  for (const s of summary) {
    lines.push(
      [
        s.name.padEnd(13),
        String(Math.round(s.rps)).padStart(7),
        `${(s.rps / direct.rps).toFixed(2)}x`.padStart(10),
        ms(s.p50).padStart(11),
        ms(s.p99).padStart(11),
        (s === direct ? '-' : ms(s.p50 - direct.p50)).padStart(11),
        (s === direct ? '-' : ms(s.p99 - direct.p99)).padStart(11),
        `${s.cpu.toFixed(1)} us`.padStart(9),
      ].join(' ') + (s.errors ? `   (${s.errors})` : ''),
    );
  }
  const ratio = (a: number, b: number): string => (b > 0 ? `${(a / b).toFixed(2)}x` : 'n/a');
  const compare = (a: Row, b: Row): string =>
    `${a.name} / ${b.name}: req/s ${ratio(a.rps, b.rps)}, added p50 ${ratio(a.p50 - direct.p50, b.p50 - direct.p50)}, ` +
    `added p99 ${ratio(a.p99 - direct.p99, b.p99 - direct.p99)}, CPU/req ${ratio(a.cpu, b.cpu)}`;
  lines.push('', compare(viaRouter, viaNginx), compare(viaNative, viaNginx), compare(viaRouter, viaNative));

  // Fixed rate, below saturation: the same load for each, a share of what nginx could do.
  const rate = Math.round((viaNginx.rps * RATE_FRACTION) / RATE_CONNECTIONS) * RATE_CONNECTIONS;
  const paced = targets.filter((t) => t.name !== 'router-native');
  const rated = new Map<string, RateResult[]>(paced.map((t) => [t.name, []]));
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of paced) {
      const result = await fixedRate(target.port, SECONDS, rate, header);
      rated.get(target.name)!.push(result);
      console.error(
        `bench: ${target.name} at ${rate} req/s, round ${round + 1}: p50 ${result.p50} us, p99 ${result.p99} us, p99.9 ${result.p999} us` +
          `${result.errors ? `, ${result.errors}` : ''}`,
      );
    }
  }
  const steady = paced.map((t) => {
    const runs = rated.get(t.name)!;
    return {
      name: t.name,
      p50: median(runs.map((r) => r.p50)),
      p99: median(runs.map((r) => r.p99)),
      p999: median(runs.map((r) => r.p999)),
      errors: runs.map((r) => r.errors).filter(Boolean).join(' | '),
    };
  });
  const base = steady[0]!;
  lines.push(
    '',
    `fixed rate: h2load --h1, ${RATE_CONNECTIONS} connections paced to ${rate} req/s in all (${RATE_FRACTION} of nginx's req/s above), ` +
      `${SECONDS}s after 1s of warm-up, ${ROUNDS} round(s), median; every request's latency from h2load's log`,
    '',
    'target                p50         p99       p99.9   added p50   added p99',
  );
  for (const s of steady) {
    lines.push(
      [
        s.name.padEnd(13),
        ms(s.p50).padStart(11),
        ms(s.p99).padStart(11),
        ms(s.p999).padStart(11),
        (s === base ? '-' : ms(s.p50 - base.p50)).padStart(11),
        (s === base ? '-' : ms(s.p99 - base.p99)).padStart(11),
      ].join(' ') + (s.errors ? `   (${s.errors})` : ''),
    );
  }
  const [, steadyRouter, steadyNginx] = steady as [(typeof steady)[number], (typeof steady)[number], (typeof steady)[number]];
  lines.push(
    '',
    `router / nginx at ${rate} req/s: added p50 ${ratio(steadyRouter.p50 - base.p50, steadyNginx.p50 - base.p50)}, ` +
      `added p99 ${ratio(steadyRouter.p99 - base.p99, steadyNginx.p99 - base.p99)}`,
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
