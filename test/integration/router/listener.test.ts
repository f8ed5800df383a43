// The per-port sniffing listener on loopback: HTTP/1 and HTTP/2 prior knowledge told apart from
// the first bytes however they are split, pipelined HTTP/1 kept in order, silent connections closed.
import { connect } from 'node:net';
import type { Socket } from 'node:net';
import { createServer as createHttpServer } from 'node:http';
import { connect as h2connect, createServer as createH2Server } from 'node:http2';
import { Duplex } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listenHttpPort } from '../../../router/listener.ts';
import type { PortListener } from '../../../router/listener.ts';

const HOST = '127.0.0.1';
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let listener: PortListener;
const http1 = createHttpServer({ keepAlive: true }, (req, res) => res.end(`h1 ${req.url}\n`));
const h2 = createH2Server((req, res) => res.end(`h2 ${req.url}\n`));

beforeAll(async () => {
  listener = await listenHttpPort({ host: HOST, port: 0, http1, h2, sniffTimeoutMs: 300 });
});

afterAll(async () => {
  await listener?.close(200);
});

/** Writes the pieces with pauses between them and collects everything until the server closes or `ms` pass. */
async function raw(pieces: string[], ms = 300): Promise<string> {
  const socket = connect(listener.boundPort, HOST);
  socket.setNoDelay(true);
  let out = '';
  socket.on('data', (chunk: Buffer) => (out += chunk.toString('latin1')));
  const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
  socket.on('error', () => {});
  await new Promise((resolve) => socket.once('connect', resolve));
  for (const piece of pieces) {
    socket.write(piece);
    await sleep(20);
  }
  await Promise.race([closed, sleep(ms)]);
  socket.destroy();
  return out;
}

const bodies = (text: string): string[] => [...text.matchAll(/h1 (\/\S*)\n/g)].map((m) => m[1]!);

/** A stream over a TCP connection whose first write goes out one byte at a time. */
function trickle(port: number): Duplex {
  const socket: Socket = connect(port, HOST);
  socket.setNoDelay(true);
  let first = true;
  const duplex = new Duplex({
    write(chunk: Buffer, _encoding, callback) {
      if (!first) {
        socket.write(chunk, () => callback());
        return;
      }
      first = false;
      void (async () => {
        for (const byte of chunk) {
          socket.write(Buffer.from([byte]));
          await sleep(2);
        }
        callback();
      })();
    },
    read() {
      socket.resume();
    },
    final(callback) {
      socket.end(() => callback());
    },
    destroy(err, callback) {
      socket.destroy();
      callback(err);
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (!duplex.push(chunk)) socket.pause();
  });
  socket.on('end', () => duplex.push(null));
  socket.on('error', (err) => duplex.destroy(err));
  return duplex;
}

describe('the sniffing listener', () => {
  it('keeps pipelined HTTP/1 requests in order', async () => {
    const out = await raw(['GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n', 'GET /c HTTP/1.1\r\nHost: x\r\n\r\n']);
    expect(bodies(out)).toEqual(['/a', '/b', '/c']);
  });

  it('takes HTTP/1 whose first bytes arrive one at a time', async () => {
    expect(bodies(await raw(['G', 'E', 'T /slow HTTP/1.1\r\nHost: x\r\n\r\n']))).toEqual(['/slow']);
    // "P" could start the HTTP/2 preface; "PO" cannot.
    expect(bodies(await raw(['P', 'OST /post HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n']))).toEqual(['/post']);
    expect(bodies(await raw(['PRI * HTTP/1', '.1\r\nHost: x\r\n\r\n']))).toEqual([]);
  });

  it('takes HTTP/2 prior knowledge, also when the preface is split', async () => {
    for (const session of [
      h2connect(`http://${HOST}:${listener.boundPort}`),
      h2connect(`http://${HOST}:${listener.boundPort}`, { createConnection: () => trickle(listener.boundPort) }),
    ]) {
      try {
        const body = await new Promise<string>((resolve, reject) => {
          const stream = session.request({ ':path': '/two' });
          let text = '';
          stream.setEncoding('utf8');
          stream.on('data', (chunk: string) => (text += chunk));
          stream.on('end', () => resolve(text));
          stream.on('error', reject);
        });
        expect(body).toBe('h2 /two\n');
      } finally {
        session.close();
      }
    }
  });

  it('closes connections that stay silent, and survives ones that leave mid-preface', async () => {
    const started = Date.now();
    const socket = connect(listener.boundPort, HOST);
    await new Promise((resolve) => socket.on('close', resolve));
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await raw(['PRI * HT'], 50)).toBe('');
    expect(bodies(await raw(['GET /after HTTP/1.1\r\nHost: x\r\n\r\n']))).toEqual(['/after']);
  });
});
