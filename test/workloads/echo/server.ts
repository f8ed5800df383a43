// The echo workload's entry point, in the cluster (bundled, see Dockerfile) and on the laptop:
//   node test/workloads/echo/server.ts
// Environment: ECHO_HOST (0.0.0.0), ECHO_HTTP_PORT (8080), ECHO_GRPC_PORT (9090),
// ECHO_TCP_PORT (7070), ECHO_UDP_PORT (ECHO_TCP_PORT's number), POD_NAME (else the host name), ECHO_PROTO_PATH (else echo.proto beside).
import { format } from 'node:util';
import { hostname } from 'node:os';
import { setLogger } from '@grpc/grpc-js';
import { startEcho } from './echo.ts';
import type { EchoServers } from './echo.ts';
import { ListenError } from './listen.ts';
import { createLogger } from './log.ts';

/** Shutdown gives open connections this long, and the process exits by SHUTDOWN_DEADLINE_MS regardless. */
const GRACE_MS = 1000;
const SHUTDOWN_DEADLINE_MS = 1800;

function fail(sentence: string): never {
  process.stderr.write(`echo: ${sentence}\n`);
  process.exit(1);
}

function portFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const port = Number(raw);
  if (!/^\d+$/.test(raw) || port > 65535) fail(`${name} must be a port number from 0 to 65535, not "${raw}".`);
  return port;
}

// No top-level await: the image runs this bundled as CommonJS.
void main();

async function main(): Promise<void> {
  const log = createLogger();
  // @grpc/grpc-js writes its own errors to stderr; keep stderr for our one-sentence failures.
  setLogger({
    error: (...args: unknown[]) => log.error('grpc-js', { detail: format(...args) }),
    info: (...args: unknown[]) => log.info('grpc-js', { detail: format(...args) }),
    debug: (...args: unknown[]) => log.debug('grpc-js', { detail: format(...args) }),
  });
  const host = process.env.ECHO_HOST || '0.0.0.0';
  const pod = process.env.POD_NAME || hostname();
  const httpPort = portFromEnv('ECHO_HTTP_PORT', 8080);
  const grpcPort = portFromEnv('ECHO_GRPC_PORT', 9090);
  const tcpPort = portFromEnv('ECHO_TCP_PORT', 7070);
  const udpPort = portFromEnv('ECHO_UDP_PORT', tcpPort);

  let servers: EchoServers;
  try {
    servers = await startEcho({ host, httpPort, grpcPort, tcpPort, udpPort, pod, log });
  } catch (err) {
    if (err instanceof ListenError) fail(`${err.message}.`);
    fail(`could not start: ${err instanceof Error ? err.message : String(err)}.`);
  }

  log.info('echo listening', {
    pod,
    host,
    http: servers.http.port,
    websocket: servers.http.port,
    grpc: servers.grpc.port,
    tcp: servers.tcp.port,
    udp: servers.udp.port,
  });

  let stopping = false;
  const stop = (signal: NodeJS.Signals): void => {
    if (stopping) process.exit(0);
    stopping = true;
    log.info('echo stopping', { signal });
    setTimeout(() => process.exit(0), SHUTDOWN_DEADLINE_MS).unref();
    servers.close(GRACE_MS).then(
      () => process.exit(0),
      (err: unknown) => {
        log.error('echo close failed', { error: err instanceof Error ? err.message : String(err) });
        process.exit(0);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
