// Runs inside a cluster pod (passed to `node -e` with argv), for bench/wan.ts: one TCP port that
// echoes, unless a connection opens with 'D' or 'U' and a 64-bit length: then it sends that many
// bytes and closes (download), or reads that many and answers one byte (upload).
//   node -e "$(cat bulk-server.js)" PORT
const net = require('node:net');
const chunk = Buffer.alloc(256 * 1024, 7);
net.createServer({ noDelay: true }, (s) => {
  s.on('error', () => s.destroy());
  s.once('data', (first) => {
    const mode = String.fromCharCode(first[0]);
    if ((mode !== 'D' && mode !== 'U') || first.length < 9) {
      s.write(first);
      s.pipe(s);
      return;
    }
    let n = Number(first.readBigUInt64BE(1));
    if (mode === 'U') {
      let got = first.length - 9;
      const check = () => { if (got >= n) s.end('k'); };
      s.on('data', (d) => { got += d.length; check(); });
      check();
      return;
    }
    const send = () => {
      while (n > 0) {
        const piece = n >= chunk.length ? chunk : chunk.subarray(0, n);
        n -= piece.length;
        if (!s.write(piece)) { s.once('drain', send); return; }
      }
      s.end();
    };
    send();
  });
}).listen(Number(process.argv[1]), () => console.log('listening'));
