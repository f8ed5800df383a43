// Inbound traffic for exchange, mesh and preview: the shadow listens on a port in the pod and each
// connection is joined to a local port on the laptop. When nothing listens locally the caller in
// the cluster is refused at once, and the user is told (at most every 10 s per port).
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from '../cli/log.ts';
import { step } from '../session/steps.ts';
import type { Tunnel } from '../tunnel/tunnel.ts';

export interface PortPair {
  local: number;
  /** The port the shadow listens on in the pod (the Service's target port). */
  remote: number;
}

export function dialLocal(port: number, timeoutMs = 5000): Promise<Duplex> {
  return new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port });
    s.setNoDelay(true);
    const t = setTimeout(() => { s.destroy(); reject(new Error('timed out')); }, timeoutMs);
    s.once('connect', () => { clearTimeout(t); s.off('error', reject); resolve(s); });
    s.once('error', (e) => { clearTimeout(t); reject(e); });
  });
}

/** Told of each connection the shadow hands over, and of the local stream it was joined to. */
export interface ForwardWatch {
  arrived(remote: number): void;
  joined(local: Duplex): void;
}

export async function forwardPorts(tunnel: Tunnel, pairs: PortPair[], log: Logger, watch?: ForwardWatch): Promise<void> {
  for (const { local, remote } of pairs) {
    let lastWarn = 0;
    await step(`listen on port ${remote} in the shadow pod`);
    await tunnel.forwardIn('0.0.0.0', remote, async () => {
      watch?.arrived(remote);
      try {
        const s = await dialLocal(local);
        watch?.joined(s);
        return s;
      } catch (e) {
        if (Date.now() - lastWarn > 10_000) {
          lastWarn = Date.now();
          log.warn(`a connection for port ${remote} arrived but nothing listens on localhost:${local} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message}); the caller was refused`);
        }
        throw e;
      }
    });
    log.debug(`shadow port ${remote} -> localhost:${local}`);
  }
}
