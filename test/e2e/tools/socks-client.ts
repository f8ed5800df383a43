// A minimal SOCKS5 CONNECT client (no auth, remote name resolution), for tests and benchmarks
// that run inside the laptop namespace.
import { connect, type Socket } from 'node:net';

export function socksConnect(proxyPort: number, host: string, port: number, timeoutMs = 15_000): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const sock = connect(proxyPort, '127.0.0.1');
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let stage = 0;
    const timer = setTimeout(() => { sock.destroy(); reject(new Error('SOCKS handshake timed out')); }, timeoutMs);
    const onData = (d: Buffer): void => {
      buf = Buffer.concat([buf, d]);
      if (stage === 0 && buf.length >= 2) {
        buf = buf.subarray(2);
        const name = Buffer.from(host);
        sock.write(Buffer.concat([Buffer.from([5, 1, 0, 3, name.length]), name, Buffer.from([port >> 8, port & 255])]));
        stage = 1;
      }
      if (stage === 1 && buf.length >= 10) {
        sock.off('data', onData);
        clearTimeout(timer);
        if (buf[1] !== 0) { sock.destroy(); reject(new Error(`SOCKS reply ${buf[1]}`)); return; }
        const rest = buf.subarray(10);
        if (rest.length > 0) sock.unshift(rest);
        resolve(sock);
      }
    };
    sock.on('connect', () => sock.write(Buffer.from([5, 1, 0])));
    sock.on('data', onData);
    sock.once('error', (e) => { clearTimeout(timer); reject(e); });
  });
}
