// What the router integration tests share: a route source that hands over one fixed table, a
// loopback listener on a free port, a backend reply that streams a body with a trailer, and a
// backend that cuts kept-alive connections.
import { once } from 'node:events';
import type { Server as HttpServer, ServerResponse } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import type { RouteTable } from '../../../contract/index.ts';
import type { RouteSource } from '../../../router/route-source.ts';

export const HOST = '127.0.0.1';

export const fixedSource = (t: RouteTable): RouteSource => ({ description: 'fixed', start: (on) => on(t), close: async () => {} });

/** Listens on a free loopback port and resolves with it. */
export async function listenLoopback(server: HttpServer | TcpServer | import('node:http2').Http2Server): Promise<number> {
  server.listen(0, HOST);
  await once(server, 'listening');
  return (server.address() as AddressInfo).port;
}

/** Five lines `part N`, `intervalMs` apart, then the trailer `x-checksum: abc123`. */
export function streamWithTrailer(res: ServerResponse, intervalMs: number): void {
  res.writeHead(200, { 'content-type': 'text/plain', trailer: 'x-checksum' });
  let n = 0;
  const timer = setInterval(() => {
    res.write(`part ${n}\n`);
    if (++n === 5) {
      clearInterval(timer);
      res.addTrailers({ 'x-checksum': 'abc123' });
      res.end();
    }
  }, intervalMs);
}

/** A backend that cuts kept-alive connections, with counts of what it saw. */
export interface FlakyBackend {
  readonly server: TcpServer;
  /** Connections accepted so far. */
  connections: number;
  /** Connections reset because a second request came on them. */
  cut: number;
}

/**
 * Answers the first request of each connection and keeps it open (`fields` are added to the
 * reply's head, e.g. `connection: keep-alive\r\n`), then resets the connection when a second
 * request arrives on it: the race a pooled connection can lose.
 */
export function flakyBackend(fields = ''): FlakyBackend {
  const server = createTcpServer((socket) => {
    flaky.connections++;
    let requests = 0;
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => {
      if (!chunk.includes('\r\n\r\n')) return;
      if (++requests === 1) socket.write(`HTTP/1.1 200 OK\r\ncontent-length: 5\r\n${fields}\r\nfresh`);
      else {
        flaky.cut++;
        socket.resetAndDestroy();
      }
    });
  });
  const flaky: FlakyBackend = { server, connections: 0, cut: 0 };
  return flaky;
}
