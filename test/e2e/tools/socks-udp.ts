// Sends COUNT numbered datagrams to HOST:PORT through a SOCKS5 proxy's UDP ASSOCIATE (the `socks`
// package: its handshake, createUDPFrame and parseUDPFrame) and counts the echoes: at most WINDOW
// in flight, each given up after 2 s (lost). HOST goes in the UDP header as written (a name is
// resolved by the proxy, in the cluster). Then it keeps the association open HOLD_MS longer (for
// flows to expire, or the tunnel to be cut, meanwhile); with ROUNDS > 1 it exchanges again on the
// same association after each hold. Run inside the laptop namespace by the e2e tests:
//   node socks-udp.ts PROXY_PORT HOST PORT [COUNT] [WINDOW] [HOLD_MS] [ROUNDS]
// prints per round {"round":R,"sent":N,"received":N,"lost":N,"duplicates":N,"wrong":N,"from":["host:port"],"ms":T,"relay":"ip:port"}
import { createSocket } from 'node:dgram';
import type { Socket } from 'node:net';
import { SocksClient, type SocksRemoteHost } from 'socks';
import { windowedSend } from './udp-window.ts';

const [proxyPort, host, portText, countText, windowText, holdText, roundsText] = process.argv.slice(2);
const port = Number(portText);
const count = Number(countText ?? 1000);
const window = Number(windowText ?? 16);
const holdMs = Number(holdText ?? 0);
const rounds = Number(roundsText ?? 1);
setTimeout(() => { console.log(JSON.stringify({ error: 'timeout' })); process.exit(1); }, (60_000 + holdMs) * rounds).unref();

const socket = createSocket('udp4');
await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', () => resolve()));
// createConnection() takes only CONNECT; an associate goes through the client and its event.
const client = new SocksClient({
  command: 'associate',
  proxy: { host: '127.0.0.1', port: Number(proxyPort), type: 5 },
  // The address and port this client sends from (RFC 1928 §7).
  destination: { host: '127.0.0.1', port: socket.address().port },
});
const { socket: control, remoteHost: relay } = await new Promise<{ socket: Socket; remoteHost?: SocksRemoteHost }>((resolve, reject) => {
  client.once('established', resolve);
  client.once('error', reject);
  client.connect();
});
if (!relay) throw new Error('no relay address in the SOCKS5 reply');

interface Round { round: number; sent: number; received: number; lost: number; duplicates: number; wrong: number; from: string[]; ms: number; relay: string }

/** One exchange of COUNT datagrams on the association; round numbers keep late echoes apart. */
async function exchange(round: number): Promise<Round> {
  const t0 = performance.now();
  const from = new Set<string>();
  let wrong = 0;
  const payloadOf = (seq: number): Buffer => Buffer.from(`kt-udp ${round}.${seq} ${'x'.repeat(seq % 200)}`);
  const w = windowedSend(count, window, (seq) => {
    socket.send(SocksClient.createUDPFrame({ remoteHost: { host: host!, port }, data: payloadOf(seq) }), relay!.port, relay!.host);
  });
  const onMessage = (msg: Buffer): void => {
    const frame = SocksClient.parseUDPFrame(msg);
    from.add(`${frame.remoteHost.host}:${frame.remoteHost.port}`);
    const m = /^kt-udp (\d+)\.(\d+) /.exec(frame.data.toString());
    if (Number(m?.[1]) !== round) return; // a late echo of an earlier round
    const seq = Number(m?.[2]);
    if (!frame.data.equals(payloadOf(seq))) { wrong++; return; }
    w.ack(seq);
  };
  socket.on('message', onMessage);
  const counts = await w.done;
  socket.off('message', onMessage);
  return { round, ...counts, sent: count, wrong, from: [...from], ms: Math.round(performance.now() - t0), relay: `${relay!.host}:${relay!.port}` };
}

for (let round = 1; round <= rounds; round++) {
  console.log(JSON.stringify(await exchange(round)));
  if (holdMs > 0) await new Promise((r) => setTimeout(r, holdMs));
}
control.destroy();
socket.close();
