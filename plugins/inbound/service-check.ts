// Whether a Service kt just created really works yet: its endpoints exist and kube-proxy has its
// rules. kt asks from inside the cluster, through the tunnel, on the shadow's health port, which
// the Services kt creates in front of a shadow also carry (named kt-health).
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { HEALTH_PATH, SHADOW_PORT } from '../../contract/index.ts';
import type { Tunnel } from '../tunnel/tunnel.ts';
import { throwIfInterrupted } from '../session/steps.ts';

export const HEALTH_SERVICE_PORT = { name: 'kt-health', port: SHADOW_PORT.health, targetPort: SHADOW_PORT.health };

/** GET over a stream opened through the tunnel; resolves with the body, or undefined. */
export function getThrough(tunnel: Tunnel, host: string, port: number, path: string): Promise<string | undefined> {
  return tunnel.dial(host, port).then((stream) => new Promise<string | undefined>((resolve) => {
    const req = request({ host, port, path, createConnection: () => stream as Socket }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => { clearTimeout(timer); resolve(res.statusCode === 200 ? body : undefined); });
      // Cut before its end (after 'end' this changes nothing).
      res.on('close', () => { clearTimeout(timer); resolve(undefined); });
    });
    // Its own timer: node:http's `timeout` option never arms on a stream handed over already open.
    const timer = setTimeout(() => req.destroy(), 3000);
    req.on('error', () => { clearTimeout(timer); resolve(undefined); });
    req.end();
  }), () => undefined);
}

/** One try: does host answer on the shadow's health port? */
export async function serviceAnswers(tunnel: Tunnel, host: string): Promise<boolean> {
  return (await getThrough(tunnel, host, SHADOW_PORT.health, HEALTH_PATH.live)) !== undefined;
}

/** Waits until host answers, up to timeoutMs; false when it never did. */
export async function waitServiceAnswers(tunnel: Tunnel, host: string, timeoutMs = 30_000): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    throwIfInterrupted();
    if (await serviceAnswers(tunnel, host)) return true;
    await new Promise((r) => setTimeout(r, 250));
  }
  return false;
}
