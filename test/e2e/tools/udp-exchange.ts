// Sends COUNT numbered datagrams to HOST:PORT (a name is resolved by the system resolver, as any
// program would) and counts the echoes: at most WINDOW in flight, each given up after 2 s (lost).
// Replies are taken from anyone and their senders recorded, so a reply from a wrong address shows.
// HOST may be several, comma-separated: datagram n goes to the (n mod k)-th from the same socket,
// and a reply that does not come from where its datagram went counts as misdirected.
// Prints {"target":"ip:port[,ip:port]","sent":N,"received":N,"lost":N,"duplicates":N,"misdirected":N,
// "from":["ip:port",...],"ms":T,"localPort":P}.
// With --connected the socket is connect()ed, as many UDP clients do (it only accepts replies
// from the address it sent to; one HOST only).
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { windowedSend } from './udp-window.ts';

const args = process.argv.slice(2).filter((a) => !a.startsWith('--'));
const connected = process.argv.includes('--connected');
const [host, portText, countText, windowText] = args;
const port = Number(portText);
const count = Number(countText ?? 1000);
const window = Number(windowText ?? 16);
const addresses = await Promise.all(host!.split(',').map(async (h) => (await lookup(h, { family: 4 })).address));
const targets = addresses.map((a) => `${a}:${port}`);
const socket = createSocket('udp4');
await new Promise<void>((resolve) => socket.bind(0, () => resolve()));
if (connected) await new Promise<void>((resolve) => socket.connect(port, addresses[0], () => resolve()));

const t0 = performance.now();
const from = new Set<string>();
let misdirected = 0;
const w = windowedSend(count, window, (seq) => {
  const payload = Buffer.from(`kt-udp ${seq} ${'x'.repeat(seq % 200)}`);
  if (connected) socket.send(payload);
  else socket.send(payload, port, addresses[seq % addresses.length]);
});

socket.on('message', (msg, r) => {
  from.add(`${r.address}:${r.port}`);
  const seq = Number(/^kt-udp (\d+) /.exec(msg.toString())?.[1] ?? -1);
  if (w.ack(seq) === 'new' && `${r.address}:${r.port}` !== targets[seq % targets.length]) misdirected++;
});

const counts = await w.done;
console.log(JSON.stringify({
  target: targets.join(','), ...counts, misdirected, from: [...from].sort(),
  ms: Math.round(performance.now() - t0), localPort: socket.address().port,
}));
socket.close();
