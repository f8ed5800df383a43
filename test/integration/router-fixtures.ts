// What the router integration tests share: a route source that hands over one fixed table, a
// loopback listener on a free port, and a backend reply that streams a body with a trailer.
import { once } from 'node:events';
import type { Server as HttpServer, ServerResponse } from 'node:http';
import type { AddressInfo, Server as TcpServer } from 'node:net';
import type { RouteTable } from '../../contract/index.ts';
import type { RouteSource } from '../../router/route-source.ts';

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
