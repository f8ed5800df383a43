// What every echo listener shares: the listen step, its error, and the handle it returns.
import type { Server } from 'node:net';

export type Protocol = 'HTTP' | 'gRPC' | 'TCP' | 'UDP';

/** A started listener: the port it got (useful when asked for port 0) and a way to stop it. */
export interface Listener {
  readonly port: number;
  /**
   * Stops accepting, lets open connections finish for up to `graceMs`, then cuts the rest.
   * Resolves once everything is closed.
   */
  close(graceMs?: number): Promise<void>;
}

export const DEFAULT_GRACE_MS = 1000;

/** A listener could not bind. `message` is one sentence a person can act on. */
export class ListenError extends Error {
  readonly protocol: Protocol;
  readonly host: string;
  readonly port: number;
  readonly code: string | undefined;

  constructor(protocol: Protocol, host: string, port: number, cause: unknown) {
    const code = errorCode(cause);
    const where = `${protocol} port ${port} on ${host}`;
    let message: string;
    if (code === 'EADDRINUSE') message = `${where} is already in use`;
    else if (code === 'EACCES') message = `no permission to listen on ${where}`;
    else if (code === 'EADDRNOTAVAIL') message = `cannot listen on ${where}: the address is not available on this machine`;
    else message = `cannot listen on ${where}: ${cause instanceof Error ? cause.message : String(cause)}`;
    super(message, { cause });
    this.name = 'ListenError';
    this.protocol = protocol;
    this.host = host;
    this.port = port;
    this.code = code;
  }
}

function errorCode(err: unknown): string | undefined {
  if (typeof err === 'object' && err !== null && 'code' in err && typeof err.code === 'string') return err.code;
  // @grpc/grpc-js folds the listen errors into its message text.
  const text = err instanceof Error ? err.message : String(err);
  return /\b(EADDRINUSE|EACCES|EADDRNOTAVAIL)\b/.exec(text)?.[1];
}

/** Listens on host:port and resolves with the bound port; rejects with a ListenError. */
export function listen(server: Server, protocol: Protocol, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new ListenError(protocol, host, port, err));
    server.once('error', onError);
    server.listen(port, host, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}

/** A host as it goes into host:port text: IPv6 literals get brackets. */
export function hostPort(host: string, port: number): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]:${port}` : `${host}:${port}`;
}
