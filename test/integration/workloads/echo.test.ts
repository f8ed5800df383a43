// The echo workload on loopback: the four protocols in-process through the client helpers, then
// the real entry point as a child process (start line, port in use, prompt shutdown).
import { spawn } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { once } from 'node:events';
import { Agent } from 'node:http';
import { connect } from 'node:net';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { Client, credentials } from '@grpc/grpc-js';
import {
  POD_HEADER,
  grpcStream,
  grpcUnary,
  httpGet,
  httpRequest,
  tcpEcho,
  wsEcho,
  wsHello,
} from '../../workloads/echo/client.ts';
import { startEcho } from '../../workloads/echo/echo.ts';
import type { EchoServers } from '../../workloads/echo/echo.ts';
import { startHttp } from '../../workloads/echo/http.ts';
import { ListenError } from '../../workloads/echo/listen.ts';
import { createLogger, silentLogger } from '../../workloads/echo/log.ts';

const HOST = '127.0.0.1';
const POD = 'echo-test-pod';
const SERVER_TS = fileURLToPath(new URL('../../workloads/echo/server.ts', import.meta.url));

describe('echo workload, in-process', () => {
  let servers: EchoServers;
  const logLines: string[] = [];
  let base: string;
  let grpcAddress: string;

  beforeAll(async () => {
    servers = await startEcho({
      host: HOST,
      httpPort: 0,
      grpcPort: 0,
      tcpPort: 0,
      pod: POD,
      log: createLogger((line) => logLines.push(line)),
    });
    base = `http://${HOST}:${servers.http.port}`;
    grpcAddress = `${HOST}:${servers.grpc.port}`;
  });

  afterAll(async () => {
    await servers?.close();
  });

  it('echoes HTTP requests over one kept-alive connection', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const first = await httpRequest(`${base}/some/path?x=1&y=two`, {
        method: 'POST',
        headers: { 'x-kt-test': 'first', 'content-type': 'text/plain' },
        body: 'héllo body',
        agent,
      });
      expect(first.status).toBe(200);
      expect(first.headers[POD_HEADER]).toBe(POD);
      expect(first.body).toMatchObject({
        pod: POD,
        method: 'POST',
        path: '/some/path?x=1&y=two',
        body: 'héllo body',
      });
      expect(first.body?.headers['x-kt-test']).toBe('first');
      expect(first.reusedSocket).toBe(false);

      const second = await httpGet(`${base}/again`, { 'x-kt-test': 'second' }, 5_000, agent);
      expect(second.status).toBe(200);
      expect(second.body).toMatchObject({ pod: POD, method: 'GET', path: '/again', body: '' });
      expect(second.body?.headers['x-kt-test']).toBe('second');
      expect(second.reusedSocket).toBe(true);
    } finally {
      agent.destroy();
    }
  });

  it('answers /healthz with ok and logs each request as one JSON line', async () => {
    const health = await httpGet(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(health.text).toBe('ok');
    expect(health.body).toBeUndefined();

    const entries = logLines.map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(entries).toContainEqual(
      expect.objectContaining({ level: 'info', msg: 'http request', method: 'GET', path: '/healthz', status: 200 }),
    );
    for (const entry of entries) expect(typeof entry.time).toBe('string');
  });

  it('greets WebSocket clients and echoes their messages', async () => {
    const hello = await wsHello(`ws://${HOST}:${servers.http.port}/ws/hello?q=1`, { 'x-kt-test': 'ws' });
    expect(hello).toMatchObject({ pod: POD, path: '/ws/hello?q=1' });
    expect(hello.headers['x-kt-test']).toBe('ws');

    const { hello: again, replies } = await wsEcho(`ws://${HOST}:${servers.http.port}/`, ['one', 'two', '{"three":3}']);
    expect(again.pod).toBe(POD);
    expect(replies).toEqual(['one', 'two', '{"three":3}']);
  });

  it('echoes binary WebSocket messages as binary', async () => {
    const ws = new WebSocket(`ws://${HOST}:${servers.http.port}/binary`);
    try {
      const messages: { data: Buffer; isBinary: boolean }[] = [];
      const got = new Promise<void>((resolve) => {
        ws.on('message', (data, isBinary) => {
          messages.push({ data: Buffer.isBuffer(data) ? data : Buffer.alloc(0), isBinary });
          if (messages.length === 2) resolve();
        });
      });
      await once(ws, 'open');
      const payload = randomBytes(64 * 1024);
      ws.send(payload);
      await got;
      expect(messages[0]?.isBinary).toBe(false);
      expect(messages[1]?.isBinary).toBe(true);
      expect(messages[1]?.data.equals(payload)).toBe(true);
    } finally {
      ws.terminate();
    }
  });

  it('answers gRPC unary calls with the message, the pod and the metadata', async () => {
    const reply = await grpcUnary(grpcAddress, 'ping', { 'x-kt-test': 'grpc-meta' });
    expect(reply.message).toBe('ping');
    expect(reply.pod).toBe(POD);
    expect(reply.index).toBe(0);
    expect(reply.metadata['x-kt-test']).toBe('grpc-meta');
  });

  it('streams count gRPC replies, 3 by default', async () => {
    const replies = await grpcStream(grpcAddress, 'stream me', 5, { 'x-kt-test': 'stream' });
    expect(replies.map((r) => r.index)).toEqual([0, 1, 2, 3, 4]);
    for (const reply of replies) {
      expect(reply).toMatchObject({ message: 'stream me', pod: POD });
      expect(reply.metadata['x-kt-test']).toBe('stream');
    }
    expect((await grpcStream(grpcAddress, 'default', 0)).map((r) => r.index)).toEqual([0, 1, 2]);
    expect(await grpcStream(grpcAddress, 'capped', 5000)).toHaveLength(1000);
  });

  it('echoes 1 MiB over raw TCP intact', async () => {
    const payload = randomBytes(1024 * 1024);
    const echoed = await tcpEcho(HOST, servers.tcp.port, payload);
    expect(echoed.length).toBe(payload.length);
    expect(echoed.equals(payload)).toBe(true);
  });

  it('echoes UDP datagrams to their sender, the empty one and a 60 kB one included', async () => {
    const socket = createSocket('udp4');
    try {
      await new Promise<void>((resolve) => socket.bind(0, HOST, resolve));
      const sent = [Buffer.from('ping-udp'), Buffer.alloc(0), randomBytes(60_000)];
      const got: Buffer[] = [];
      const all = new Promise<void>((resolve) => socket.on('message', (m) => { got.push(m); if (got.length === sent.length) resolve(); }));
      for (const d of sent) socket.send(d, servers.udp.port, HOST);
      await all;
      expect(got.map((d) => d.toString('hex')).sort()).toEqual(sent.map((d) => d.toString('hex')).sort());
    } finally {
      socket.close();
    }
  });

  it('reports a port in use as a ListenError', async () => {
    const attempt = startHttp({ host: HOST, port: servers.http.port, pod: POD, log: silentLogger });
    await expect(attempt).rejects.toBeInstanceOf(ListenError);
    await expect(attempt).rejects.toMatchObject({
      code: 'EADDRINUSE',
      message: `HTTP port ${servers.http.port} on ${HOST} is already in use`,
    });
  });
});

describe('echo workload, in-process shutdown', () => {
  it('closes promptly with open keep-alive, WebSocket, gRPC and TCP connections', async () => {
    const servers = await startEcho({ host: HOST, httpPort: 0, grpcPort: 0, tcpPort: 0, pod: POD, log: silentLogger });
    const agent = new Agent({ keepAlive: true });
    const grpcClient = new Client(`${HOST}:${servers.grpc.port}`, credentials.createInsecure());
    const ws = new WebSocket(`ws://${HOST}:${servers.http.port}/`);
    const wsHelloReceived = once(ws, 'message');
    const wsClosed = once(ws, 'close');
    const tcp = connect(servers.tcp.port, HOST);
    const tcpConnected = once(tcp, 'connect');
    tcp.on('error', () => {});
    try {
      await httpGet(`http://${HOST}:${servers.http.port}/`, {}, 5_000, agent);
      await wsHelloReceived;
      await tcpConnected;
      await new Promise<void>((resolve, reject) =>
        grpcClient.waitForReady(Date.now() + 5_000, (err) => (err ? reject(err) : resolve())),
      );

      const started = Date.now();
      await servers.close(1000);
      expect(Date.now() - started).toBeLessThan(2000);
      const [code] = await wsClosed;
      expect(code).toBe(1001);
    } finally {
      agent.destroy();
      ws.terminate();
      tcp.destroy();
      grpcClient.close();
    }
  });
});

describe('echo workload, as a process', () => {
  interface Child {
    exit: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
    stdout: () => string;
    stderr: () => string;
    kill: (signal: NodeJS.Signals) => void;
  }

  function run(env: Record<string, string>): Child {
    const child = spawn(process.execPath, [SERVER_TS], {
      env: { ...process.env, ECHO_HOST: HOST, POD_NAME: POD, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    return {
      exit,
      stdout: () => stdout,
      stderr: () => stderr,
      kill: (signal) => {
        if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      },
    };
  }

  async function startLine(child: Child): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 15_000;
    while (Date.now() < deadline) {
      const line = child.stdout().split('\n').find((l) => l.includes('"echo listening"'));
      if (line) return JSON.parse(line) as Record<string, unknown>;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`no start line; stdout: ${child.stdout()} stderr: ${child.stderr()}`);
  }

  it('logs its ports, serves, and exits 0 within 2 s of SIGTERM despite a kept-alive connection', async () => {
    const child = run({ ECHO_HTTP_PORT: '0', ECHO_GRPC_PORT: '0', ECHO_TCP_PORT: '0' });
    const agent = new Agent({ keepAlive: true });
    try {
      const start = await startLine(child);
      expect(start).toMatchObject({ level: 'info', pod: POD, host: HOST });
      const { http, grpc, tcp } = start;
      if (typeof http !== 'number' || typeof grpc !== 'number' || typeof tcp !== 'number') {
        throw new Error(`start line without ports: ${JSON.stringify(start)}`);
      }

      const reply = await httpGet(`http://${HOST}:${http}/from-test`, {}, 5_000, agent);
      expect(reply.body).toMatchObject({ pod: POD, path: '/from-test' });
      expect((await grpcUnary(`${HOST}:${grpc}`, 'hi')).pod).toBe(POD);
      expect((await tcpEcho(HOST, tcp, Buffer.from('abc'))).toString()).toBe('abc');

      const started = Date.now();
      child.kill('SIGTERM');
      const { code } = await child.exit;
      expect(code).toBe(0);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(child.stdout()).toContain('"path":"/from-test","status":200');
    } finally {
      agent.destroy();
      child.kill('SIGKILL');
    }
  });

  it('exits 1 with one sentence on stderr when a port is in use', async () => {
    const busy = await startHttp({ host: HOST, port: 0, pod: POD, log: silentLogger });
    const child = run({ ECHO_HTTP_PORT: '0', ECHO_GRPC_PORT: '0', ECHO_TCP_PORT: String(busy.port) });
    try {
      const { code } = await child.exit;
      expect(code).toBe(1);
      expect(child.stderr()).toBe(`echo: TCP port ${busy.port} on ${HOST} is already in use.\n`);
    } finally {
      child.kill('SIGKILL');
      await busy.close();
    }
  });
});
