// Binding listeners (TCP with an error a person can act on; UDP as the caller's raw error), for
// both images and the plugins' local DNS.
import type { Socket as UdpSocket } from 'node:dgram';
import type { Server } from 'node:net';

/**
 * Why a listener could not bind, as the start of one sentence about `where` ("TCP port 53 on
 * 127.0.0.1"): the one place every side words a port in use, a port it may not bind and an
 * address that is not here. Callers add their own hint ("; pick another with --proxy-port").
 */
export function cannotListen(where: string, cause: unknown): { code: string | undefined; sentence: string } {
  const code = typeof cause === 'object' && cause !== null && 'code' in cause && typeof cause.code === 'string' ? cause.code : undefined;
  let sentence: string;
  if (code === 'EADDRINUSE') sentence = `${where} is already in use`;
  else if (code === 'EACCES') sentence = `no permission to listen on ${where}`;
  else if (code === 'EADDRNOTAVAIL') sentence = `cannot listen on ${where}: the address is not available on this machine`;
  else sentence = `cannot listen on ${where}: ${cause instanceof Error ? cause.message : String(cause)}`;
  return { code, sentence };
}

/** A listener could not bind. `message` is one sentence a person can act on. */
export class ListenError extends Error {
  readonly what: string;
  readonly host: string;
  readonly port: number;
  readonly code: string | undefined;

  constructor(what: string, host: string, port: number, cause: unknown) {
    const { code, sentence } = cannotListen(`${what} port ${port} on ${host}`, cause);
    super(sentence, { cause });
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
