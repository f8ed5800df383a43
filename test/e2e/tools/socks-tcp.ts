// Sends bytes to host:port through a SOCKS5 proxy (remote name resolution) and reports whether
// they came back intact. Run inside the laptop namespace by the end-to-end tests:
//   node socks-tcp.ts PROXY_PORT HOST PORT BYTES  ->  prints {"ok":true,"bytes":N,"ms":T}
import { createHash, randomBytes } from 'node:crypto';
import { socksConnect } from './socks-client.ts';

const [proxyPort, host, port, size] = process.argv.slice(2);
const payload = randomBytes(Number(size ?? 65536));
const t0 = performance.now();
setTimeout(() => { console.log(JSON.stringify({ ok: false, error: 'timeout' })); process.exit(1); }, 30_000).unref();
try {
  const sock = await socksConnect(Number(proxyPort), host!, Number(port));
  const received: Buffer[] = [];
  let got = 0;
  sock.on('data', (d: Buffer) => {
    received.push(d);
    got += d.length;
    if (got < payload.length) return;
    const digest = (b: Buffer): string => createHash('sha256').update(b).digest('hex');
    const ok = digest(Buffer.concat(received)) === digest(payload);
    console.log(JSON.stringify({ ok, bytes: got, ms: Math.round(performance.now() - t0) }));
    sock.destroy();
    process.exit(ok ? 0 : 1);
  });
  sock.write(payload);
} catch (e) {
  console.log(JSON.stringify({ ok: false, error: (e as Error).message }));
  process.exit(1);
}
