// Sends bytes to host:port directly and reports whether they came back intact (transparent and
// hosts modes, where no proxy is involved). Prints {"ok":true,"bytes":N,"ms":T}.
import { createHash, randomBytes } from 'node:crypto';
import { connect } from 'node:net';

const [host, port, size] = process.argv.slice(2);
const payload = randomBytes(Number(size ?? 65536));
const t0 = performance.now();
const sock = connect(Number(port), host!);
const got: Buffer[] = [];
let n = 0;
sock.on('connect', () => sock.write(payload));
sock.on('data', (d: Buffer) => {
  got.push(d);
  n += d.length;
  if (n >= payload.length) {
    const ok = createHash('sha256').update(Buffer.concat(got)).digest('hex') === createHash('sha256').update(payload).digest('hex');
    console.log(JSON.stringify({ ok, bytes: n, ms: Math.round(performance.now() - t0) }));
    process.exit(ok ? 0 : 1);
  }
});
sock.on('error', (e) => { console.log(JSON.stringify({ ok: false, error: e.message })); process.exit(1); });
setTimeout(() => { console.log(JSON.stringify({ ok: false, error: 'timeout', bytes: n })); process.exit(1); }, 30_000).unref();
