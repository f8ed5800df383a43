// Inbound traffic for exchange, mesh and preview: the shadow listens on a port in the pod and each
// connection is joined to a local port on the laptop. When nothing listens locally the caller in
// the cluster is refused at once, and the user is told (at most every 10 s per port).
import { connect } from 'node:net';
import type { Duplex } from 'node:stream';
import type { Logger } from './log.ts';
import type { Tunnel } from './tunnel.ts';

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

export async function forwardPorts(tunnel: Tunnel, pairs: PortPair[], log: Logger): Promise<void> {
  for (const { local, remote } of pairs) {
    let lastWarn = 0;
    await tunnel.forwardIn('0.0.0.0', remote, async () => {
      try {
        return await dialLocal(local);
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
