// Small typed clients for the echo workload, for tests on the laptop (or in-process): each makes
// one exchange, checks the reply's shape, and gives up after its timeout.
import { request as httpRequestRaw } from 'node:http';
import type { Agent, IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';
import { connect } from 'node:net';
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import type { MethodDefinition, ServiceDefinition } from '@grpc/proto-loader';
import WebSocket from 'ws';
import { loadEchoService } from './grpc.ts';
import type { EchoReply, HttpEcho, WsHello } from './types.ts';

export type { EchoReply, HttpEcho, WsHello } from './types.ts';
export { POD_HEADER } from './types.ts';

export const DEFAULT_TIMEOUT_MS = 10_000;

// ---------------------------------------------------------------------------------------------
// HTTP

export interface HttpResult {
  status: number;
  headers: IncomingHttpHeaders;
  /** The raw response body. */
  text: string;
  /** The body parsed as an echo reply; undefined when it is not one (e.g. /healthz, a proxy error). */
  body: HttpEcho | undefined;
  /** Whether the request went over a kept-alive socket that an earlier request had used. */
  reusedSocket: boolean;
}

export interface HttpRequestOptions {
  method?: string;
  headers?: OutgoingHttpHeaders;
  body?: string | Buffer;
  timeoutMs?: number;
  /** E.g. a keep-alive agent, to send several requests over one connection. */
  agent?: Agent;
}

/** One HTTP request to an http:// URL; resolves with whatever status came back. */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResult> {
  const { method = 'GET', headers = {}, body, timeoutMs = DEFAULT_TIMEOUT_MS, agent } = options;
  return new Promise((resolve, reject) => {
    const req = httpRequestRaw(url, { method, headers, agent }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.on('error', reject);
      res.on('end', () => {
        clearTimeout(timer);
        const text = Buffer.concat(chunks).toString('utf8');
        const parsed = parseJson(text);
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          text,
          body: isHttpEcho(parsed) ? parsed : undefined,
          reusedSocket: req.reusedSocket,
        });
      });
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`${method} ${url}: no complete reply within ${timeoutMs} ms`)),
      timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** GET an http:// URL. */
export function httpGet(
  url: string,
  headers: OutgoingHttpHeaders = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
  agent?: Agent,
): Promise<HttpResult> {
  return httpRequest(url, { headers, timeoutMs, agent });
}

// ---------------------------------------------------------------------------------------------
// WebSocket

/** Opens a ws:// URL, returns the server's hello message and closes again. */
export async function wsHello(
  url: string,
  headers: Record<string, string> = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<WsHello> {
  return (await wsEcho(url, [], headers, timeoutMs)).hello;
}

/** Opens a ws:// URL, reads the hello, sends each message and collects as many replies (as text). */
export function wsEcho(
  url: string,
  messages: readonly string[],
  headers: Record<string, string> = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<{ hello: WsHello; replies: string[] }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, { headers, handshakeTimeout: timeoutMs });
    let hello: WsHello | undefined;
    const replies: string[] = [];
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        ws.terminate();
        reject(err);
      } else {
        ws.close(1000);
        resolve({ hello: hello!, replies });
      }
    };
    const timer = setTimeout(() => finish(new Error(`${url}: no complete WebSocket exchange within ${timeoutMs} ms`)), timeoutMs);
    ws.on('error', (err) => finish(err));
    ws.on('close', (code) => finish(new Error(`${url}: WebSocket closed (code ${code}) before the exchange finished`)));
    ws.on('message', (data, isBinary) => {
      const bytes = Array.isArray(data) ? Buffer.concat(data) : data instanceof ArrayBuffer ? Buffer.from(data) : data;
      const text = bytes.toString('utf8');
      if (hello === undefined) {
        const parsed = parseJson(text);
        if (isBinary || !isWsHello(parsed)) {
          finish(new Error(`${url}: the first WebSocket message is not an echo hello: ${text.slice(0, 200)}`));
          return;
        }
        hello = parsed;
        for (const message of messages) ws.send(message);
      } else {
        replies.push(text);
      }
      if (replies.length === messages.length) finish();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// gRPC

let service: ServiceDefinition | undefined;

function method(name: 'Unary' | 'ServerStream'): MethodDefinition<object, object> {
  service ??= loadEchoService();
  const definition = service[name];
  if (!definition) throw new Error(`echo.proto has no method ${name}`);
  return definition;
}

function toMetadata(values: Record<string, string>): Metadata {
  const metadata = new Metadata();
  for (const [key, value] of Object.entries(values)) metadata.set(key, value);
  return metadata;
}

/** Calls kt.echo.Echo/Unary on host:port (plaintext HTTP/2). */
export function grpcUnary(
  address: string,
  message: string,
  metadata: Record<string, string> = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<EchoReply> {
  const unary = method('Unary');
  const client = new Client(address, credentials.createInsecure());
  return new Promise<EchoReply>((resolve, reject) => {
    client.makeUnaryRequest(
      unary.path,
      unary.requestSerialize,
      unary.responseDeserialize,
      { message, count: 0 },
      toMetadata(metadata),
      { deadline: Date.now() + timeoutMs },
      (err, reply) => {
        if (err) reject(err);
        else if (!isEchoReply(reply)) reject(new Error(`${address}: Unary reply has the wrong shape`));
        else resolve(reply);
      },
    );
  }).finally(() => client.close());
}

/** Calls kt.echo.Echo/ServerStream on host:port and collects every reply. */
export function grpcStream(
  address: string,
  message: string,
  count: number,
  metadata: Record<string, string> = {},
  timeoutMs = DEFAULT_TIMEOUT_MS,
): Promise<EchoReply[]> {
  const serverStream = method('ServerStream');
  const client = new Client(address, credentials.createInsecure());
  return new Promise<EchoReply[]>((resolve, reject) => {
    const replies: EchoReply[] = [];
    const call = client.makeServerStreamRequest(
      serverStream.path,
      serverStream.requestSerialize,
      serverStream.responseDeserialize,
      { message, count },
      toMetadata(metadata),
      { deadline: Date.now() + timeoutMs },
    );
    let settled = false;
    call.on('data', (reply: object) => {
      if (isEchoReply(reply)) replies.push(reply);
      else if (!settled) {
        settled = true;
        call.cancel();
        reject(new Error(`${address}: ServerStream reply has the wrong shape`));
      }
    });
    call.on('error', (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    call.on('end', () => {
      if (settled) return;
      settled = true;
      resolve(replies);
    });
  }).finally(() => client.close());
}

// ---------------------------------------------------------------------------------------------
// TCP

/** Sends payload to the TCP echo and resolves with the same number of bytes read back. */
export function tcpEcho(host: string, port: number, payload: Buffer, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host, port });
    const chunks: Buffer[] = [];
    let received = 0;
    let settled = false;
    const finish = (err?: Error): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (err) {
        socket.destroy();
        reject(err);
      } else {
        socket.end();
        resolve(Buffer.concat(chunks, received));
      }
    };
    const timer = setTimeout(
      () => finish(new Error(`${host}:${port}: ${received} of ${payload.length} bytes echoed within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('error', (err) => finish(err));
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (received >= payload.length) finish();
    });
    socket.on('close', () => finish(new Error(`${host}:${port}: closed after ${received} of ${payload.length} bytes`)));
    socket.on('connect', () => {
      if (payload.length === 0) finish();
      else socket.write(payload);
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Shape checks

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isHttpEcho(value: unknown): value is HttpEcho {
  return (
    isRecord(value) &&
    typeof value.pod === 'string' &&
    typeof value.method === 'string' &&
    typeof value.path === 'string' &&
    isRecord(value.headers) &&
    typeof value.body === 'string'
  );
}

function isWsHello(value: unknown): value is WsHello {
  return isRecord(value) && typeof value.pod === 'string' && typeof value.path === 'string' && isRecord(value.headers);
}

function isEchoReply(value: unknown): value is EchoReply {
  return (
    isRecord(value) &&
    typeof value.message === 'string' &&
    typeof value.pod === 'string' &&
    typeof value.index === 'number' &&
    isRecord(value.metadata) &&
    Object.values(value.metadata).every((v) => typeof v === 'string')
  );
}
