// Binding a TCP listener, with an error a person can act on.
import type { Server } from 'node:net';

/** A listener could not bind. `message` is one sentence a person can act on. */
export class ListenError extends Error {
  readonly what: string;
  readonly host: string;
  readonly port: number;
  readonly code: string | undefined;

  constructor(what: string, host: string, port: number, cause: unknown) {
    const code = typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
    const where = `${what} port ${port} on ${host}`;
    let message: string;
    if (code === 'EADDRINUSE') message = `${where} is already in use`;
    else if (code === 'EACCES') message = `no permission to listen on ${where}`;
    else if (code === 'EADDRNOTAVAIL') message = `cannot listen on ${where}: the address is not available here`;
    else message = `cannot listen on ${where}: ${cause instanceof Error ? cause.message : String(cause)}`;
    super(message, { cause });
    this.name = 'ListenError';
    this.what = what;
    this.host = host;
    this.port = port;
    this.code = code;
  }
}

/** Listens on host:port (no host: all interfaces) and resolves with the bound port. */
export function listenTcp(server: Server, what: string, host: string | undefined, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(new ListenError(what, host ?? 'all interfaces', port, err));
    server.once('error', onError);
    server.listen({ port, host }, () => {
      server.off('error', onError);
      const address = server.address();
      resolve(typeof address === 'object' && address !== null ? address.port : port);
    });
  });
}
