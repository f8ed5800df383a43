// Fake UDP flows for the relays' tests: a flow echoes each datagram, prefixed with where it goes
// (`host:port|`), and ends itself after its idle time, as the tunnel's flows do.
import type { UdpFlow, openUdpFlow } from '../../../../plugins/tunnel/udp.ts';

export const noTunnel = { exec: (): Promise<never> => Promise.reject(new Error('no tunnel in this test')) };

export interface FakeFlows {
  open: typeof openUdpFlow;
  opened: string[];
}

export function fakeFlows(): FakeFlows {
  const opened: string[] = [];
  const open: typeof openUdpFlow = async (_tunnel, host, port, opts = {}) => {
    opened.push(`${host}:${port}`);
    const listeners: ((p: Buffer) => void)[] = [];
    let reason: UdpFlow['closeReason'];
    let resolveClosed!: () => void;
    const closed = new Promise<void>((r) => (resolveClosed = r));
    const end = (why: NonNullable<UdpFlow['closeReason']>): void => {
      if (reason !== undefined) return;
      reason = why;
      clearTimeout(timer);
      resolveClosed();
    };
    const timer = setTimeout(() => end('idle'), opts.idleMs ?? 60_000);
    return {
      send: (payload) => {
        if (reason !== undefined) return;
        timer.refresh();
        setImmediate(() => { for (const cb of listeners) cb(Buffer.concat([Buffer.from(`${host}:${port}|`), payload])); });
      },
      onMessage: (cb) => void listeners.push(cb),
      close: () => end('closed'),
      closed,
      get dropped() { return 0; },
      get closeReason() { return reason; },
    };
  };
  return { open, opened };
}
