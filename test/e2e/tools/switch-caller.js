// Runs inside a cluster pod (passed to `node -e` with argv): calls a URL until its stdin ends (or
// MAX_MS passed), and prints one JSON line: how many requests, which pods answered, the errors.
//   node -e "$(cat switch-caller.js)" URL MODE INTERVAL_MS CONCURRENCY MAX_MS [HEADERS_JSON]
// MODE poll: one request every INTERVAL_MS, each on a new connection (what a switch must not
//   drop); keepalive: CONCURRENCY loops on a kept-alive pool (connections that live across the
//   switch), each waiting INTERVAL_MS between requests (0: back to back).
const http = require('node:http');
const [url, mode, interval, concurrency, maxMs, headersJson] = process.argv.slice(1);
const headers = JSON.parse(headersJson || '{}');
const keepalive = mode === 'keepalive';
const agent = keepalive ? new http.Agent({ keepAlive: true, maxSockets: Number(concurrency) }) : false;
const pods = {};
// When each pod first and last answered (request start, ms since the epoch: this pod shares the
// machine's clock with the test).
const first = {};
const last = {};
const errors = [];
let requests = 0;
let stopping = false;
const t0 = Date.now();

function once() {
  return new Promise((resolve) => {
    const started = Date.now();
    requests++;
    const fail = (what) => { errors.push({ at: started - t0, what }); resolve(); };
    const req = http.get(url, { agent, headers, timeout: 2000 }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => {
        if (res.statusCode !== 200) return fail(`HTTP ${res.statusCode}`);
        try {
          const pod = JSON.parse(body).pod;
          pods[pod] = (pods[pod] || 0) + 1;
          first[pod] ??= started;
          last[pod] = started;
        } catch { return fail('bad body'); }
        resolve();
      });
      res.on('error', (e) => fail(e.code || e.message));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (e) => fail(e.code || e.message));
  });
}

const finish = () => {
  if (stopping) return;
  stopping = true;
  setTimeout(() => {
    console.log(JSON.stringify({ requests, errors, pods, first, last, ms: Date.now() - t0 }));
    process.exit(0);
  }, keepalive ? 2500 : 1500);
};
process.stdin.on('end', finish);
process.stdin.on('close', finish);
process.stdin.resume();
setTimeout(finish, Number(maxMs)).unref();

if (keepalive) {
  const pause = () => new Promise((r) => setTimeout(r, Number(interval)));
  for (let i = 0; i < Number(concurrency); i++) (async () => { while (!stopping) { await once(); if (Number(interval) > 0) await pause(); } })();
} else {
  setInterval(() => { if (!stopping) void once(); }, Number(interval));
}
console.error('started');
