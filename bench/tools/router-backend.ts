// A minimal fast HTTP/1.1 backend for bench/router.ts: keep-alive, a tiny fixed body, the
// serving backend's name in x-echo-pod. Listens on 127.0.0.1, one port per name given.
//   node bench/tools/router-backend.ts NAME...
// Prints {"NAME": port, ...} once listening.
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';

const names = process.argv.slice(2);
if (names.length === 0) {
  console.error('usage: node bench/tools/router-backend.ts NAME...');
  process.exit(2);
}
const ports: Record<string, number> = {};
await Promise.all(
  names.map(
    (name) =>
      new Promise<void>((resolve) => {
        const body = Buffer.from(`hello from ${name}\n`);
        const server = createServer({ keepAlive: true }, (req, res) => {
          req.resume();
          res.writeHead(200, { 'content-type': 'text/plain', 'content-length': body.length, 'x-echo-pod': name });
          res.end(body);
        });
        server.keepAliveTimeout = 60_000;
        server.listen(0, '127.0.0.1', () => {
          ports[name] = (server.address() as AddressInfo).port;
          resolve();
        });
      }),
  ),
);
console.log(JSON.stringify(ports));
process.on('SIGTERM', () => process.exit(0));
