// Runs inside a cluster pod (passed to `node -e`): a caller with one pooled keep-alive connection,
// as most HTTP clients and every gRPC channel have. It opens the connection, keeps it busy with an
// unmarked request every 200 ms (so no idle timeout closes it), prints `ready` once it is open, and
// when a line arrives on stdin sends COUNT requests with HEADERS_JSON on the same pool, then prints
// which pods answered and over how many connections, as JSON. Bounded: exits after 300 s.
//   node -e "$(cat incluster-pooled.js)" HOST PORT HEADERS_JSON COUNT
const http = require('node:http');
const [host, port, headersJson, count] = process.argv.slice(1);
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, 300_000).unref();

const get = (headers) => new Promise((resolve, reject) => {
  const req = http.get({ host, port, path: '/pooled', headers, agent }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => resolve({ pod: JSON.parse(body).pod.replace(/-[a-z0-9]+-[a-z0-9]+$/, '-*'), local: req.socket.localPort, reused: req.reusedSocket }));
  });
  req.on('error', reject);
});

let marked = false;
const keepBusy = async () => {
  while (!marked) {
    await get({});
    await new Promise((r) => setTimeout(r, 200));
  }
};

(async () => {
  const first = await get({});
  console.log('ready');
  const busy = keepBusy();
  await new Promise((r) => process.stdin.once('data', r));
  marked = true;
  await busy;
  const pods = {};
  const locals = new Set([first.local]);
  let reused = 0;
  for (let i = 0; i < Number(count); i++) {
    const r = await get(JSON.parse(headersJson));
    pods[r.pod] = (pods[r.pod] || 0) + 1;
    locals.add(r.local);
    if (r.reused) reused++;
  }
  console.log(JSON.stringify({ pods, connections: locals.size, reused }));
  process.exit(0);
})().catch((e) => { console.log(JSON.stringify({ error: String(e) })); process.exit(1); });
