import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  OriginalDstError,
  createOriginalDstLookup,
  findOriginalDst,
  parseConntrackLine,
} from '../../../../../plugins/connect/transparent/original-dst.ts';

const PROC = [
  'ipv4     2 udp      17 28 src=10.123.0.5 dst=10.96.0.10 sport=5353 dport=53 src=10.96.0.10 dst=10.123.0.5 sport=53 dport=5353 mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.123.0.5 dst=10.96.7.7 sport=48710 dport=80 src=127.0.0.1 dst=10.123.0.5 sport=15001 dport=48710 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 tcp      6 431999 ESTABLISHED src=10.123.0.5 dst=10.96.3.4 sport=48711 dport=8443 src=127.0.0.1 dst=10.123.0.5 sport=15001 dport=48711 [ASSURED] mark=0 zone=0 use=2',
  // A direct connection to the listener: not redirected.
  'ipv4     2 tcp      6 431999 ESTABLISHED src=127.0.0.1 dst=127.0.0.1 sport=50000 dport=15001 src=127.0.0.1 dst=127.0.0.1 sport=15001 dport=50000 [ASSURED] mark=0 zone=0 use=2',
  'ipv4     2 icmp     1 29 src=10.123.0.5 dst=10.96.0.1 type=8 code=0 id=7 src=10.96.0.1 dst=10.123.0.5 type=0 code=0 id=7 mark=0 zone=0 use=2',
  '',
].join('\n');

const TOOL =
  'tcp      6 431999 ESTABLISHED src=10.123.0.5 dst=10.96.7.7 sport=48710 dport=80 src=127.0.0.1 dst=10.123.0.5 sport=15001 dport=48710 [ASSURED] mark=0 use=1\n';

function fakeSocket(remoteAddress: string, remotePort: number, localAddress: string, localPort: number): Socket {
  return { remoteAddress, remotePort, localAddress, localPort } as unknown as Socket;
}

describe('conntrack lines', () => {
  it('reads both tuples from proc and tool lines', () => {
    const expected = {
      protocol: 'tcp',
      orig: { src: '10.123.0.5', dst: '10.96.7.7', sport: 48710, dport: 80 },
      reply: { src: '127.0.0.1', dst: '10.123.0.5', sport: 15001, dport: 48710 },
    };
    expect(parseConntrackLine(PROC.split('\n')[1]!)).toEqual(expected);
    expect(parseConntrackLine(TOOL)).toEqual(expected);
    expect(parseConntrackLine(PROC.split('\n')[4]!)).toBeUndefined(); // icmp: no ports
    expect(parseConntrackLine('')).toBeUndefined();
  });

  it('finds the original destination by the reply tuple', () => {
    const accepted = { clientIp: '10.123.0.5', clientPort: 48711, proxyIp: '127.0.0.1', proxyPort: 15001 };
    expect(findOriginalDst(PROC, accepted)).toEqual({ ip: '10.96.3.4', port: 8443 });
    expect(findOriginalDst(TOOL, { ...accepted, clientPort: 48710 })).toEqual({ ip: '10.96.7.7', port: 80 });
    expect(findOriginalDst(PROC, { ...accepted, clientPort: 4871 })).toBeUndefined(); // no prefix matches
    expect(findOriginalDst(PROC, { ...accepted, proxyPort: 15002 })).toBeUndefined();
    // Connected straight to the proxy: no original destination.
    expect(findOriginalDst(PROC, { clientIp: '127.0.0.1', clientPort: 50000, proxyIp: '127.0.0.1', proxyPort: 15001 })).toBeUndefined();
  });
});

describe('lookups', () => {
  const dir = mkdtempSync(join(tmpdir(), 'kt-odst-'));
  const procPath = join(dir, 'nf_conntrack');
  writeFileSync(procPath, PROC);
  // A stand-in for the conntrack tool: prints one entry and records its arguments.
  const argsPath = join(dir, 'args');
  const tool = join(dir, 'conntrack');
  writeFileSync(tool, `#!/bin/sh\necho "$@" > '${argsPath}'\nprintf '%s' '${TOOL.trim()}'\necho\n`);
  chmodSync(tool, 0o755);

  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('reads the proc file, serving concurrent lookups together', async () => {
    const lookup = createOriginalDstLookup({ procPath });
    const results = await Promise.all([
      lookup(fakeSocket('10.123.0.5', 48710, '127.0.0.1', 15001)),
      lookup(fakeSocket('::ffff:10.123.0.5', 48711, '::ffff:127.0.0.1', 15001)),
    ]);
    expect(results).toEqual([
      { ip: '10.96.7.7', port: 80 },
      { ip: '10.96.3.4', port: 8443 },
    ]);
    expect(lookup.source()).toBe('proc');
  });

  it('rejects when there is no redirected entry', async () => {
    const lookup = createOriginalDstLookup({ procPath });
    await expect(lookup(fakeSocket('127.0.0.1', 50000, '127.0.0.1', 15001))).rejects.toBeInstanceOf(OriginalDstError);
    await expect(lookup(fakeSocket('10.1.1.1', 1, '127.0.0.1', 15001))).rejects.toThrow(/no redirected conntrack entry/);
    await expect(lookup(fakeSocket(undefined as unknown as string, 1, '127.0.0.1', 1))).rejects.toThrow(/closed before/);
  });

  it('falls back to the conntrack tool without the proc file', async () => {
    const lookup = createOriginalDstLookup({ procPath: join(dir, 'missing'), conntrackBin: tool });
    expect(await lookup(fakeSocket('10.123.0.5', 48710, '127.0.0.1', 15001))).toEqual({ ip: '10.96.7.7', port: 80 });
    expect(lookup.source()).toBe('conntrack-tool');
    expect(readFileSync(argsPath, 'utf8').trim()).toBe(
      '-L -p tcp --reply-src 127.0.0.1 --reply-dst 10.123.0.5 --reply-port-src 15001 --reply-port-dst 48710',
    );
  });

  it('says so when neither source is there', async () => {
    const lookup = createOriginalDstLookup({ procPath: join(dir, 'missing'), conntrackBin: join(dir, 'no-such-tool') });
    await expect(lookup(fakeSocket('10.123.0.5', 48710, '127.0.0.1', 15001))).rejects.toThrow(/is not installed/);
  });
});
