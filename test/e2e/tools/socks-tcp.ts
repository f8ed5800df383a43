// Sends bytes to host:port through a SOCKS5 proxy (remote name resolution) and reports whether
// they came back intact. Run inside the laptop namespace by the end-to-end tests:
//   node socks-tcp.ts PROXY_PORT HOST PORT BYTES  ->  prints {"ok":true,"bytes":N,"ms":T}
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';

const [proxyPort, host, port, size] = process.argv.slice(2);
const payload = randomBytes(Number(size ?? 65536));
const t0 = performance.now();
const sock = connect(Number(proxyPort), '127.0.0.1');
let stage = 0;
let buf = Buffer.alloc(0);
const received: Buffer[] = [];
let got = 0;
sock.on('connect', () => sock.write(Buffer.from([5, 1, 0])));
sock.on('data', (d: Buffer) => {
  if (stage === 2) {
    received.push(d);
    got += d.length;
    if (got >= payload.length) {
      const ok = createHash('sha256').update(Buffer.concat(received)).digest('hex') === createHash('sha256').update(payload).digest('hex');
      console.log(JSON.stringify({ ok, bytes: got, ms: Math.round(performance.now() - t0) }));
      sock.destroy();
      process.exit(ok ? 0 : 1);
    }
    return;
  }
  buf = Buffer.concat([buf, d]);
  if (stage === 0 && buf.length >= 2) {
    buf = buf.subarray(2);
    const name = Buffer.from(host!);
    const req = Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([Number(port) >> 8, Number(port) & 255])]);
    sock.write(req);
    stage = 1;
  }
  if (stage === 1 && buf.length >= 10) {
    if (buf[1] !== 0) { console.log(JSON.stringify({ ok: false, reply: buf[1] })); process.exit(1); }
    stage = 2;
    sock.write(payload);
  }
});
sock.on('error', (e) => { console.log(JSON.stringify({ ok: false, error: e.message })); process.exit(1); });
setTimeout(() => { console.log(JSON.stringify({ ok: false, error: 'timeout', bytes: got })); process.exit(1); }, 30_000).unref();
