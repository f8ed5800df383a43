// The shadow's graceful stop (SIGTERM in the pod): forwarded callers keep being accepted for a
// moment, then refused, while connections already forwarded finish over the still open SSH link.
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ssh2 from 'ssh2';
import { afterAll, describe, expect, it } from 'vitest';
import { SSH_USER } from '../../../contract/index.ts';
import { keyPair, startLoopbackShadow, writeSessionDir } from './fixtures.ts';

const host = keyPair();
const client = keyPair();
const dir = mkdtempSync(join(tmpdir(), 'kt-shadow-drain-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Connects to 127.0.0.1:port, sends `line`, resolves with the reply or the error code. */
function ask(port: number, line: string): Promise<string> {
  return new Promise((resolve) => {
    const s = connect({ host: '127.0.0.1', port });
    let got = '';
    s.on('data', (d: Buffer) => { got += d.toString(); });
    s.on('end', () => resolve(got));
    s.on('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
    s.end(line);
  });
}

describe('shadow drain', () => {
  it('accepts during the linger, refuses after it, and lets a forwarded connection finish', async () => {
    writeSessionDir(dir, host.private, client.public, 53);
    const shadow = await startLoopbackShadow(dir);
    const ssh = new ssh2.Client();
    await new Promise<void>((resolve, reject) => {
      ssh.once('ready', () => resolve());
      ssh.once('error', reject);
      ssh.connect({ host: '127.0.0.1', port: shadow.ports.ssh, username: SSH_USER, privateKey: client.private, hostVerifier: () => true });
    });
    // The laptop side answers each forwarded connection 400 ms after it ended its request.
    ssh.on('tcp connection', (_info, accept) => {
      const ch = accept();
      let req = '';
      ch.on('data', (d: Buffer) => { req += d.toString(); });
      ch.on('end', () => setTimeout(() => ch.end(`re:${req}`), 400));
    });
    const port = await new Promise<number>((resolve, reject) => ssh.forwardIn('127.0.0.1', 0, (err, p) => (err ? reject(err) : resolve(p))));
    expect(await ask(port, 'before')).toBe('re:before');

    const t0 = Date.now();
    const inFlight = ask(port, 'in-flight');
    const drained = shadow.drain(300, 2000);
    expect(shadow.isReady()).toBe(false);
    await new Promise((r) => setTimeout(r, 100));
    const duringLinger = ask(port, 'linger');
    await new Promise((r) => setTimeout(r, 300));
    expect(await ask(port, 'after')).toBe('ECONNREFUSED');
    expect(await inFlight).toBe('re:in-flight');
    expect(await duringLinger).toBe('re:linger');
    await drained;
    const took = Date.now() - t0;
    expect(took).toBeGreaterThanOrEqual(500);
    expect(took).toBeLessThan(2000);
    ssh.end();
    await shadow.close();
  });

  it('returns at once when nothing is forwarded (kt-connect shadows)', async () => {
    const shadow = await startLoopbackShadow(dir);
    const t0 = Date.now();
    await shadow.drain(1000, 1000);
    expect(Date.now() - t0).toBeLessThan(100);
    await shadow.close();
  });
});
