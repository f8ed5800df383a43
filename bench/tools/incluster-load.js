// Runs inside a cluster pod (passed to `node -e` with argv): sequential HTTP requests for latency,
// then a bulk TCP echo for throughput. Prints one JSON line.
//   node -e "$(cat incluster-load.js)" HTTP_URL TCP_HOST TCP_PORT REQUESTS BULK_MIB
const net = require('node:net');
const http = require('node:http');
const [url, tcpHost, tcpPort, n, mib] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function get() {
  return new Promise((resolve, reject) => {
    http.get(url, { agent }, (res) => { res.resume(); res.on('end', resolve); }).on('error', reject);
  });
}
function bulk(bytes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(Number(tcpPort), tcpHost);
    const chunk = Buffer.alloc(256 * 1024, 1);
    let got = 0;
    let t0 = 0;
    s.on('connect', async () => {
      t0 = performance.now();
      for (let sent = 0; sent < bytes; sent += chunk.length) {
        if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
      }
    });
    s.on('data', (d) => { got += d.length; if (got >= bytes) { s.destroy(); resolve(bytes / 1048576 / ((performance.now() - t0) / 1000)); } });
    s.on('error', reject);
  });
}
(async () => {
  for (let i = 0; i < 20; i++) await get();
  const lat = [];
  for (let i = 0; i < Number(n); i++) { const t = performance.now(); await get(); lat.push(performance.now() - t); }
  lat.sort((a, b) => a - b);
  const mibps = await bulk(Number(mib) * 1048576);
  console.log(JSON.stringify({ p50: +lat[Math.floor(lat.length / 2)].toFixed(3), p99: +lat[Math.floor(lat.length * 0.99)].toFixed(3), mibps: +mibps.toFixed(1) }));
  process.exit(0);
})().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
