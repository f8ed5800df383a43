// Starts all the echo listeners together: HTTP + WebSocket, gRPC and raw TCP.
import { startGrpc } from './grpc.ts';
import { startHttp } from './http.ts';
import { DEFAULT_GRACE_MS } from './listen.ts';
import type { Listener } from './listen.ts';
import type { Logger } from './log.ts';
import { startTcp } from './tcp.ts';

export interface EchoOptions {
  host: string;
  httpPort: number;
  grpcPort: number;
  tcpPort: number;
  pod: string;
  log: Logger;
  /** Defaults to echo.proto next to the gRPC module (or ECHO_PROTO_PATH). */
  protoPath?: string;
}

export interface EchoServers {
  readonly http: Listener;
  readonly grpc: Listener;
  readonly tcp: Listener;
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts the three listeners. If any fails to start, the others are closed again and the first
 * failure (a ListenError when it is about the port) is thrown.
 */
export async function startEcho(options: EchoOptions): Promise<EchoServers> {
  const { host, pod, log } = options;
  const results = await Promise.allSettled([
    startHttp({ host, port: options.httpPort, pod, log }),
    startGrpc({ host, port: options.grpcPort, pod, log, protoPath: options.protoPath }),
    startTcp({ host, port: options.tcpPort, log }),
  ]);
  const [http, grpc, tcp] = results;
  if (http.status === 'fulfilled' && grpc.status === 'fulfilled' && tcp.status === 'fulfilled') {
    const listeners = [http.value, grpc.value, tcp.value];
    return {
      http: http.value,
      grpc: grpc.value,
      tcp: tcp.value,
      close: async (graceMs = DEFAULT_GRACE_MS) => {
        await Promise.all(listeners.map((listener) => listener.close(graceMs)));
      },
    };
  }
  await Promise.all(results.map((r) => (r.status === 'fulfilled' ? r.value.close(0) : undefined)));
  const failure = results.find((r) => r.status === 'rejected');
  const reason: unknown = failure?.reason;
  throw reason;
}
