// Runs inside a cluster pod (passed to `node -e`): a caller that opens FRESH keep-alive connections
// the moment it is told to, as a pooled client starting up right after a switch would. It prints
// `ready` once running; then for each line on stdin (a JSON object of request headers) it opens
// CONNECTIONS new connections one after the other, each with its own keep-alive pool, sends
// REQUESTS requests on each, and prints one JSON line: which pod answered the first request of
// each connection, and the pods of all requests by count. Bounded: exits after 600 s or when
// stdin ends.
//   node -e "$(cat incluster-fresh.js)" HOST PORT CONNECTIONS REQUESTS
const http = require('node:http');
const readline = require('node:readline');
const [host, port, connections, requests] = process.argv.slice(1);
setTimeout(() => process.exit(0), 600_000).unref();

const get = (agent, headers) => new Promise((resolve) => {
  const req = http.get({ host, port, path: '/fresh', headers, agent, timeout: 5000 }, (res) => {
    let body = '';
    res.on('data', (d) => { body += d; });
    res.on('end', () => {
      try { resolve({ pod: JSON.parse(body).pod.replace(/-[a-z0-9]+-[a-z0-9]+$/, '-*'), reused: req.reusedSocket }); } catch { resolve({ pod: `status ${res.statusCode}` }); }
    });
  });
  req.on('timeout', () => req.destroy(new Error('timeout')));
  req.on('error', (e) => resolve({ pod: `error ${e.message}` }));
});

const lines = readline.createInterface({ input: process.stdin });
let queue = Promise.resolve();
lines.on('line', (line) => {
  queue = queue.then(async () => {
    const headers = JSON.parse(line);
    const first = [];
    const pods = {};
    let reused = 0;
    for (let c = 0; c < Number(connections); c++) {
      const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
      for (let r = 0; r < Number(requests); r++) {
        const answer = await get(agent, headers);
        if (r === 0) first.push(answer.pod);
        if (answer.reused) reused++;
        pods[answer.pod] = (pods[answer.pod] || 0) + 1;
      }
      agent.destroy();
    }
    console.log(JSON.stringify({ first, pods, reused }));
  });
});
lines.on('close', () => { void queue.then(() => process.exit(0)); });
console.log('ready');
