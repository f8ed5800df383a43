// Runs inside a cluster pod (passed to `node -e`, which has no project modules there): one
// request of a given kind with given headers; prints the answering pod as JSON.
//   node -e "$(cat incluster-probe.js)" KIND HOST PORT HEADERS_JSON [ARG]
// KIND: http | ws | grpc | grpc-stream | load (ARG = seconds; HEADERS_JSON = list of header sets)
const http = require('node:http');
const http2 = require('node:http2');
const crypto = require('node:crypto');
const [kind, host, port, headersJson, arg] = process.argv.slice(1);
const headers = JSON.parse(headersJson || '{}');
const out = (o) => { console.log(JSON.stringify(o)); process.exit(0); };
setTimeout(() => out({ error: 'timeout' }), 20000).unref();

function pb(fields) { // protobuf: {1: 'string', 2: int}
  const parts = [];
  for (const [n, v] of Object.entries(fields)) {
    if (typeof v === 'string') { const b = Buffer.from(v); parts.push(Buffer.from([(Number(n) << 3) | 2, b.length]), b); }
    else parts.push(Buffer.from([(Number(n) << 3) | 0, v]));
  }
  const body = Buffer.concat(parts);
  const prefix = Buffer.alloc(5); prefix.writeUInt32BE(body.length, 1);
  return Buffer.concat([prefix, body]);
}
function pbStrings(buf) { // field number -> string, for one message
  const f = {}; let i = 0;
  while (i < buf.length) {
    const tag = buf[i++]; const n = tag >> 3; const t = tag & 7;
    if (t === 2) { let len = 0, shift = 0, b; do { b = buf[i++]; len |= (b & 127) << shift; shift += 7; } while (b & 128); f[n] = buf.subarray(i, i + len).toString(); i += len; }
    else if (t === 0) { while (buf[i++] & 128); } else break;
  }
  return f;
}
function grpc(method, body) {
  const c = http2.connect(`http://${host}:${port}`);
  c.on('error', (e) => out({ error: e.message }));
  const req = c.request({ ':method': 'POST', ':path': `/kt.echo.Echo/${method}`, 'content-type': 'application/grpc', te: 'trailers', ...headers });
  const chunks = []; let trailers = {};
  req.on('data', (d) => chunks.push(d));
  req.on('trailers', (t) => { trailers = t; });
  req.on('end', () => {
    const all = Buffer.concat(chunks); const msgs = [];
    for (let i = 0; i + 5 <= all.length;) { const len = all.readUInt32BE(i + 1); msgs.push(pbStrings(all.subarray(i + 5, i + 5 + len))); i += 5 + len; }
    c.close();
    out({ pod: msgs[0] && msgs[0][2], messages: msgs.length, grpcStatus: trailers['grpc-status'], grpcMessage: trailers['grpc-message'] });
  });
  req.end(body);
}
if (kind === 'http') {
  http.get({ host, port, path: '/probe', headers, agent: false }, (r) => { let b = ''; r.on('data', (d) => { b += d; }); r.on('end', () => { try { out({ status: r.statusCode, pod: JSON.parse(b).pod }); } catch { out({ status: r.statusCode, body: b.slice(0, 300) }); } }); }).on('error', (e) => out({ error: e.message }));
} else if (kind === 'ws') {
  const req = http.request({ host, port, path: '/ws', headers: { Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': crypto.randomBytes(16).toString('base64'), ...headers } });
  req.on('upgrade', (_res, sock, head) => {
    let buf = head;
    const tryParse = () => {
      if (buf.length < 2) return;
      let len = buf[1] & 127; let off = 2;
      if (len === 126) { if (buf.length < 4) return; len = buf.readUInt16BE(2); off = 4; }
      if (buf.length < off + len) return;
      sock.destroy();
      out({ pod: JSON.parse(buf.subarray(off, off + len).toString()).pod });
    };
    sock.on('data', (d) => { buf = Buffer.concat([buf, d]); tryParse(); });
    tryParse();
  });
  req.on('response', (r) => out({ status: r.statusCode }));
  req.on('error', (e) => out({ error: e.message }));
  req.end();
} else if (kind === 'grpc') {
  grpc('Unary', pb({ 1: 'hi' }));
} else if (kind === 'grpc-stream') {
  grpc('ServerStream', pb({ 1: 'hi', 2: 4 }));
} else if (kind === 'load') {
  // Steady keep-alive load: for each header set, 4 clients loop for ARG seconds; counts answers by pod.
  const sets = JSON.parse(headersJson);
  const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
  const end = Date.now() + Number(arg) * 1000;
  const result = sets.map(() => ({ ok: 0, failed: 0, pods: {} }));
  const loop = (i) => new Promise((resolve) => {
    const next = () => {
      if (Date.now() > end) { resolve(); return; }
      http.get({ host, port, path: '/load', headers: sets[i], agent }, (r) => {
        let b = ''; r.on('data', (d) => { b += d; });
        r.on('end', () => { const r0 = result[i]; if (r.statusCode === 200) { r0.ok++; const p = JSON.parse(b).pod.replace(/-[a-z0-9]+-[a-z0-9]+$/, '-*'); r0.pods[p] = (r0.pods[p] || 0) + 1; } else r0.failed++; next(); });
      }).on('error', () => { result[i].failed++; next(); });
    };
    next();
  });
  Promise.all(sets.flatMap((_s, i) => [loop(i), loop(i), loop(i), loop(i)])).then(() => out(result));
}
