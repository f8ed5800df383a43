// Binding listeners (TCP with an error a person can act on; UDP as the caller's raw error), for
// both images and the plugins' local DNS.
import type { Socket as UdpSocket } from 'node:dgram';
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

/** Binds a UDP socket (dns2's servers are ones) to host:port; rejects with the socket's own error. */
export function bindUdp(socket: Pick<UdpSocket, 'once' | 'off' | 'bind'>, host: string | undefined, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error): void => reject(err);
    socket.once('error', onError);
    socket.bind(port, host, () => {
      socket.off('error', onError);
      resolve();
    });
  });
}
