// When kt-mesh may say "routed": a NEW connection to the Service, opened inside the cluster and
// routed by kube-proxy like any caller's, goes through the router. Patching the selector is not
// enough: kube-proxy applies the new endpoints a moment later (about a second here, more on big
// clusters), and a keep-alive connection opened meanwhile stays with a real pod for its whole
// life, marked requests included.
//
// Two checks, within one bound: the Service's EndpointSlices list only router pods (what every
// node's kube-proxy is told), then a probe (contract ROUTER_PROBE) sent to the Service's ClusterIP
// from the shadow, through the tunnel, is answered by a router pod on several fresh connections
// in a row (kube-proxy picks a backend per connection, so one answer could be luck while real
// pods are still in its rules). A Service without a ClusterIP or without an HTTP port cannot be
// probed; the endpoints are then all there is to wait for.
import type { V1Service } from '@kubernetes/client-node';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { ROUTER_LABEL, ROUTER_PROBE } from '../../contract/index.ts';
import type { EndpointView } from '../../contract/recovery.ts';
import { call, type Kube } from '../kube/kube.ts';
import type { Logger } from '../cli/log.ts';
import type { MeshPort } from './router.ts';
import { throwIfInterrupted } from '../session/steps.ts';
import { serviceEndpoints } from '../exchange/switch.ts';
import type { Tunnel } from '../tunnel/tunnel.ts';

/** Bounds of the wait; tests may change them. */
export const MESH_SWITCH_TIMING = {
  /** Both checks together. */
  boundMs: 30_000,
  /** Fresh connections in a row a router pod must answer. */
  consecutive: 5,
  pollMs: 200,
  /** One probe's answer. */
  probeMs: 3000,
};

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * One probe on a fresh connection to host:port, opened from the shadow: the router pod that
 * answered, or undefined (a real pod answered, or nothing did).
 */
export async function probeRouter(tunnel: Tunnel, host: string, port: number): Promise<string | undefined> {
  const stream = await tunnel.dial(host, port).catch(() => undefined);
  if (stream === undefined) return undefined;
  return new Promise((resolve) => {
    const req = request({
      host,
      port,
      method: ROUTER_PROBE.method,
      path: ROUTER_PROBE.path,
      headers: { [ROUTER_PROBE.header]: '1', connection: 'close' },
      createConnection: () => stream as Socket,
    }, (res) => {
      clearTimeout(timer);
      const pod = res.headers[ROUTER_PROBE.podHeader];
      res.resume();
      resolve(res.statusCode === 204 && typeof pod === 'string' && pod !== '' ? pod : undefined);
      stream.destroy();
    });
    // Its own timer: node:http's `timeout` option never arms on a stream handed over already open.
    const timer = setTimeout(() => req.destroy(), MESH_SWITCH_TIMING.probeMs);
    req.on('error', () => {
      clearTimeout(timer);
      resolve(undefined);
    });
    req.end();
  });
}

/** Names of the Service's router pods. */
async function routerPods(kube: Kube, service: string): Promise<Set<string>> {
  const pods = await call(kube, 'list', 'pods', () => kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: `${ROUTER_LABEL}=${service}` }));
  return new Set(pods.items.map((p) => p.metadata!.name!));
}

/** A ready router pod is listed, and no other ready pod is. */
function onlyRouters(eps: EndpointView[], routers: Set<string>): boolean {
  const isRouter = (e: EndpointView): boolean => e.pod !== undefined && routers.has(e.pod);
  return eps.some((e) => e.ready && isRouter(e)) && eps.every((e) => !e.ready || isRouter(e));
}

/**
 * Waits (bounded, see MESH_SWITCH_TIMING) until new connections to the meshed Service go through
 * the router; says so, and what callers may see, when that could not be confirmed. Never throws
 * but for an interruption or an API error.
 */
export async function waitThroughRouter(kube: Kube, tunnel: Tunnel, svc: V1Service, ports: MeshPort[], log: Logger): Promise<void> {
  const name = svc.metadata!.name!;
  const end = Date.now() + MESH_SWITCH_TIMING.boundMs;
  const bound = `${MESH_SWITCH_TIMING.boundMs / 1000}s`;
  log.progress(`waiting until new connections to service/${name} go through the router`);
  for (;;) {
    throwIfInterrupted();
    if (onlyRouters(await serviceEndpoints(kube, name), await routerPods(kube, name))) break;
    if (Date.now() >= end) {
      log.warn(`service/${name}'s endpoints still listed pods other than the router after ${bound}; callers that connect now may still reach the real pods, marked requests too`);
      return;
    }
    await sleep(MESH_SWITCH_TIMING.pollMs);
  }
  const ip = svc.spec?.clusterIP;
  // Any HTTP port: the router answers the probe on each, whatever its backends speak.
  const http = ports.find((p) => p.protocol === 'http');
  if (!ip || ip === 'None' || http === undefined) return;
  let inARow = 0;
  const answered = new Set<string>();
  while (inARow < MESH_SWITCH_TIMING.consecutive) {
    throwIfInterrupted();
    const pod = await probeRouter(tunnel, ip, http.port);
    if (pod !== undefined) {
      inARow++;
      answered.add(pod);
      continue;
    }
    inARow = 0;
    if (Date.now() >= end) {
      log.warn(`could not confirm within ${bound} that new connections to service/${name} go through the router (a probe from inside the cluster still reached a real pod or no answer); callers that connect now may still reach the real pods, marked requests too`);
      return;
    }
    await sleep(MESH_SWITCH_TIMING.pollMs);
  }
  log.debug(`${MESH_SWITCH_TIMING.consecutive} fresh connections to ${ip}:${http.port} in a row were answered by router pod(s) ${[...answered].join(', ')}`);
}
