// gRPC echo (HTTP/2 cleartext): kt.echo.Echo from echo.proto, loaded at run time.
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { Server, ServerCredentials } from '@grpc/grpc-js';
import type { Metadata, ServerUnaryCall, ServerWritableStream, sendUnaryData } from '@grpc/grpc-js';
import { loadSync } from '@grpc/proto-loader';
import type { AnyDefinition, ServiceDefinition } from '@grpc/proto-loader';
import type { Logger } from './log.ts';
import { DEFAULT_GRACE_MS, ListenError, hostPort } from './listen.ts';
import type { Listener } from './listen.ts';
import type { EchoReply, EchoRequest } from './types.ts';

export const SERVICE_NAME = 'kt.echo.Echo';
export const DEFAULT_STREAM_COUNT = 3;
export const MAX_STREAM_COUNT = 1000;

/**
 * Where echo.proto is: ECHO_PROTO_PATH if set, else next to this module. In the single-file
 * bundle import.meta.url is the bundle's own URL, and the image puts echo.proto beside it.
 */
export function protoPath(): string {
  return process.env.ECHO_PROTO_PATH || fileURLToPath(new URL('./echo.proto', import.meta.url));
}

/** Loads the kt.echo.Echo service definition (for a server, or a client via makeGenericClientConstructor). */
export function loadEchoService(path: string = protoPath()): ServiceDefinition {
  const definitions = loadSync(path, { keepCase: true, longs: Number, enums: String, defaults: true, oneofs: true });
  const service = definitions[SERVICE_NAME];
  if (!isService(service)) throw new Error(`${path} does not define the service ${SERVICE_NAME}`);
  return service;
}

function isService(definition: AnyDefinition | undefined): definition is ServiceDefinition {
  return definition !== undefined && !('format' in definition) && 'Unary' in definition && 'ServerStream' in definition;
}

export interface GrpcOptions {
  host: string;
  port: number;
  pod: string;
  log: Logger;
  /** Defaults to protoPath(). */
  protoPath?: string;
}

export async function startGrpc(options: GrpcOptions): Promise<Listener> {
  const { host, pod, log } = options;
  const server = new Server();
  server.addService(loadEchoService(options.protoPath), {
    Unary: (call: ServerUnaryCall<Partial<EchoRequest>, EchoReply>, callback: sendUnaryData<EchoReply>) => {
      log.info('grpc call', { method: 'Unary' });
      callback(null, { message: call.request.message ?? '', pod, metadata: stringMetadata(call.metadata), index: 0 });
    },
    ServerStream: (call: ServerWritableStream<Partial<EchoRequest>, EchoReply>) => {
      log.info('grpc call', { method: 'ServerStream', count: call.request.count ?? 0 });
      void serverStream(call, pod).catch((err: unknown) => {
        log.warn('grpc stream failed', { error: err instanceof Error ? err.message : String(err) });
        call.destroy(err instanceof Error ? err : new Error(String(err)));
      });
    },
  });

  const port = await new Promise<number>((resolve, reject) => {
    server.bindAsync(hostPort(host, options.port), ServerCredentials.createInsecure(), (err, bound) => {
      if (err) reject(new ListenError('gRPC', host, options.port, err));
      else resolve(bound);
    });
  });

  let closing: Promise<void> | undefined;
  return {
    port,
    close(graceMs = DEFAULT_GRACE_MS) {
      closing ??= new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          server.forceShutdown();
          resolve();
        }, graceMs);
        timer.unref();
        server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      return closing;
    },
  };
}

async function serverStream(call: ServerWritableStream<Partial<EchoRequest>, EchoReply>, pod: string): Promise<void> {
  const requested = call.request.count ?? 0;
  const count = requested > 0 ? Math.min(requested, MAX_STREAM_COUNT) : DEFAULT_STREAM_COUNT;
  const message = call.request.message ?? '';
  const metadata = stringMetadata(call.metadata);
  // Stops waiting for 'drain' when the client goes away.
  const cancelled = new AbortController();
  const onCancelled = (): void => cancelled.abort();
  call.once('cancelled', onCancelled);
  try {
    for (let index = 0; index < count; index++) {
      if (call.cancelled) return;
      if (!call.write({ message, pod, metadata, index })) await once(call, 'drain', { signal: cancelled.signal });
    }
    call.end();
  } catch (err) {
    if (call.cancelled) return;
    throw err;
  } finally {
    call.off('cancelled', onCancelled);
  }
}

/** The incoming metadata's string values (binary "-bin" entries are skipped). */
function stringMetadata(metadata: Metadata): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [key, value] of Object.entries(metadata.getMap())) {
    if (typeof value === 'string') out[key] = value;
  }
  return out;
}
