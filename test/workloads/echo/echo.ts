// Starts all the echo listeners together: HTTP + WebSocket, gRPC, raw TCP and UDP.
import { startGrpc } from './grpc.ts';
import { startHttp } from './http.ts';
import { DEFAULT_GRACE_MS } from './listen.ts';
import type { Listener } from './listen.ts';
import type { Logger } from './log.ts';
import { startTcp } from './tcp.ts';
import { startUdp } from './udp.ts';

export interface EchoOptions {
  host: string;
  httpPort: number;
  grpcPort: number;
  tcpPort: number;
  /** Default: tcpPort (UDP and TCP each have their own port numbers). */
  udpPort?: number;
  pod: string;
  log: Logger;
  /** Defaults to echo.proto next to the gRPC module (or ECHO_PROTO_PATH). */
  protoPath?: string;
}

export interface EchoServers {
  readonly http: Listener;
  readonly grpc: Listener;
  readonly tcp: Listener;
  readonly udp: Listener;
  close(graceMs?: number): Promise<void>;
}

/**
 * Starts the four listeners. If any fails to start, the others are closed again and the first
 * failure (a ListenError when it is about the port) is thrown.
 */
export async function startEcho(options: EchoOptions): Promise<EchoServers> {
  const { host, pod, log } = options;
  const results = await Promise.allSettled([
    startHttp({ host, port: options.httpPort, pod, log }),
    startGrpc({ host, port: options.grpcPort, pod, log, protoPath: options.protoPath }),
    startTcp({ host, port: options.tcpPort, log }),
    startUdp({ host, port: options.udpPort ?? options.tcpPort, log }),
  ]);
  const [http, grpc, tcp, udp] = results;
  if (http.status === 'fulfilled' && grpc.status === 'fulfilled' && tcp.status === 'fulfilled' && udp.status === 'fulfilled') {
    const listeners = [http.value, grpc.value, tcp.value, udp.value];
    return {
      http: http.value,
      grpc: grpc.value,
      tcp: tcp.value,
      udp: udp.value,
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
