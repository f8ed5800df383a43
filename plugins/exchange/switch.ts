// The moments kt-exchange moves a Service's traffic, made so that no new connection is lost:
// - on: the Service selects the shadow alone, the shadow is Ready and listed, and a connection to
//   the Service from inside the cluster really arrives on this laptop, before kt says ready (and,
//   in scale mode, before the Deployment goes to zero: the real pods stop at SIGTERM, so they go
//   only once kube-proxy sends callers to the shadow; then the shadow takes their labels and the
//   Service gets its selector back);
// - off: after the Service was given back (selector restored, or Deployment scaled back and its
//   pods Ready and listed, see restore-replicas), the shadow leaves the endpoints, kt waits until
//   connections to the Service stop arriving here (kube-proxy applies endpoint changes
//   asynchronously), lets forwarded connections still open finish, and only then the shadow goes.
// Connections established before a switch stay with the pod they were opened to (that is how
// Service routing works); --recycle-pods restarts the real pods so pooled callers reconnect.
import type { V1Service } from '@kubernetes/client-node';
import type { Duplex } from 'node:stream';
import type { EndpointView } from '../../contract/recovery.ts';
import { UserError } from '../cli/errors.ts';
import type { ForwardWatch } from '../inbound/forward.ts';
import { apiStatus, call, mergePatch, type Kube } from '../kube/kube.ts';
import type { Logger } from '../cli/log.ts';
import { appsApi, recoveryApi } from '../kube/recovery-api.ts';
import { throwIfInterrupted } from '../session/steps.ts';
import type { Tunnel } from '../tunnel/tunnel.ts';

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Bounds of each wait; tests and the bench may shorten them. */
export const SWITCH_TIMING = {
  /** Until the endpoints list (or no longer list) the shadow. */
  endpointsMs: 30_000,
  /** Until a connection to the Service arrives here (or, on exit, stops arriving). */
  routedMs: 30_000,
  /** How long no connection may arrive before the Service counts as moved away. */
  quietMs: 1500,
  /** How long forwarded connections still open may take to finish on exit. */
  drainMs: 5000,
  pollMs: 200,
  /** At start-up, a fresh probe this often until one arrives (each kept open for probeLifeMs). */
  probeEveryMs: 150,
  probeLifeMs: 2000,
  /**
   * Scale mode, between the probe arriving and the real pods getting SIGTERM: the probe proved the
   * shadow's node routes to the shadow; kube-proxy on other nodes applies the change a moment later.
   */
  otherNodesMs: 1000,
};

/** Counts connections arriving from the shadow's remote forwards, and those still open. */
export class Traffic implements ForwardWatch {
  #arrivals = 0;
  readonly #open = new Set<Duplex>();
  get arrivals(): number { return this.#arrivals; }
  get open(): number { return this.#open.size; }
  arrived(): void { this.#arrivals++; }
  joined(local: Duplex): void {
    this.#open.add(local);
    local.once('close', () => this.#open.delete(local));
  }
}

/** A Service's endpoints as `pod ready` facts; the pod name when the slice names one. */
export async function serviceEndpoints(kube: Kube, service: string): Promise<EndpointView[]> {
  return call(kube, 'list', 'endpointslices', () => recoveryApi(kube).listEndpoints(kube.namespace, service));
}

/**
 * What --recycle-pods will restart, checked before anything changes: the Deployments whose pods
 * the Service's own selector selects. Scale mode needs none (its pods go anyway).
 */
export async function recycleTargets(kube: Kube, mode: string, selector: Record<string, string>, service: string): Promise<string[]> {
  if (mode !== 'selector') throw new UserError('--recycle-pods is for --mode selector; scale mode replaces the pods anyway.', 2);
  const names = await deploymentsSelected(kube, selector);
  if (names.length === 0) throw new UserError(`--recycle-pods restarts Deployments, and no Deployment runs the pods of service/${service}.`);
  return names;
}

/** Deployments whose pods the selector selects (what --recycle-pods restarts). */
export async function deploymentsSelected(kube: Kube, selector: Record<string, string>): Promise<string[]> {
  const list = await call(kube, 'list', 'deployments', () => appsApi(kube).listNamespacedDeployment({ namespace: kube.namespace }));
  return list.items
    .filter((d) => Object.entries(selector).every(([k, v]) => d.spec?.template.metadata?.labels?.[k] === v))
    .map((d) => d.metadata!.name!);
}

export interface SwitchOptions {
  kube: Kube;
  tunnel: Tunnel;
  log: Logger;
  svc: V1Service;
  /** The Service port to probe (the first exposed one). */
  servicePort: number;
  shadowPod: string;
  mode: 'selector' | 'scale';
  /** The Service's own selector (what selects the real pods). */
  original: Record<string, string>;
}

export class ExchangeSwitch {
  readonly traffic = new Traffic();
  readonly #o: SwitchOptions;
  /** Whether the shadow was ever seen in the Service's endpoints (then exit waits for it to leave). */
  #listed = false;

  constructor(o: SwitchOptions) {
    this.#o = o;
  }

  get #name(): string { return this.#o.svc.metadata!.name!; }

  async #endpoints(): Promise<EndpointView[]> {
    const eps = await serviceEndpoints(this.#o.kube, this.#name);
    if (eps.some((e) => e.pod === this.#o.shadowPod)) this.#listed = true;
    return eps;
  }

  /** `startUp`: a Ctrl-C ends the wait (on exit the signal is what started it, so it must not). */
  async #waitEndpoints(ok: (eps: EndpointView[]) => boolean, startUp: boolean): Promise<boolean> {
    const end = Date.now() + SWITCH_TIMING.endpointsMs;
    for (;;) {
      if (startUp) throwIfInterrupted();
      if (ok(await this.#endpoints())) return true;
      if (Date.now() >= end) return false;
      await sleep(SWITCH_TIMING.pollMs);
    }
  }

  #shadowReady = (eps: EndpointView[]): boolean => eps.some((e) => e.pod === this.#o.shadowPod && e.ready);

  /**
   * One connection to the Service's ClusterIP, opened from the shadow (so routed by the node's
   * kube-proxy like any caller's): true when a connection arrived on this laptop meanwhile. Any
   * arrival counts: callers other than the probe being routed here prove the same.
   */
  async #probe(windowMs: number): Promise<boolean> {
    const ip = this.#o.svc.spec?.clusterIP;
    const before = this.traffic.arrivals;
    let stream: Duplex | undefined;
    try {
      stream = await this.#o.tunnel.dial(ip!, this.#o.servicePort);
      stream.on('error', () => undefined);
    } catch {
      // Refused or unreachable: the probe did not arrive; arrivals of others still count.
    }
    const end = Date.now() + windowMs;
    while (this.traffic.arrivals === before && Date.now() < end) await sleep(20);
    stream?.destroy();
    return this.traffic.arrivals > before;
  }

  #probeable(): boolean {
    const ip = this.#o.svc.spec?.clusterIP;
    return !!ip && ip !== 'None';
  }

  /**
   * Until a connection to the Service arrives here; false (with a warning) when it never did. A
   * fresh probe goes out every probeEveryMs without waiting for the one before, so the moment
   * kube-proxy routes to the shadow is seen about one round trip later, not after a probe's window.
   */
  async #routedHere(): Promise<boolean> {
    if (!this.#probeable()) return true;
    const end = Date.now() + SWITCH_TIMING.routedMs;
    const before = this.traffic.arrivals;
    const probes = new Set<Duplex>();
    const drop = (s: Duplex): void => { probes.delete(s); s.destroy(); };
    let next = 0;
    try {
      while (Date.now() < end) {
        throwIfInterrupted();
        if (this.traffic.arrivals > before) return true;
        if (Date.now() >= next) {
          next = Date.now() + SWITCH_TIMING.probeEveryMs;
          // Refused or unreachable: this probe did not arrive; arrivals of others still count.
          this.#o.tunnel.dial(this.#o.svc.spec!.clusterIP!, this.#o.servicePort).then((s) => {
            s.on('error', () => undefined);
            probes.add(s);
            setTimeout(() => drop(s), SWITCH_TIMING.probeLifeMs).unref();
          }, () => undefined);
        }
        await sleep(20);
      }
    } finally {
      for (const s of [...probes]) drop(s);
    }
    this.#o.log.warn(`could not confirm within ${SWITCH_TIMING.routedMs / 1000}s that connections to service/${this.#name} reach this laptop (a probe from inside the cluster never arrived); callers may not be switched yet`);
    return false;
  }

  /** After the switch, before saying ready: only the shadow is listed, and traffic arrives here. */
  async switched(): Promise<void> {
    if (!await this.#waitEndpoints(this.#onlyShadow, true)) {
      this.#o.log.warn(`service/${this.#name}'s endpoints still listed other ready pods after ${SWITCH_TIMING.endpointsMs / 1000}s; some callers may still reach them`);
    }
    await this.#routedHere();
  }

  /**
   * Scale mode, once the Service selects the shadow alone: the shadow takes the Deployment's pod
   * labels (so it stays selected when the Service gets its own selector back), and kube-proxy on
   * every node has had its moment to follow before the real pods are stopped.
   */
  async labelShadow(labels: Record<string, string>): Promise<void> {
    const { kube, shadowPod } = this.#o;
    await call(kube, 'patch', 'pods', () => kube.core.patchNamespacedPod({ namespace: kube.namespace, name: shadowPod, body: { metadata: { labels } } }, mergePatch));
    await sleep(SWITCH_TIMING.otherNodesMs);
  }

  /**
   * Scale mode, after scaling to 0 and before the Service gets its own selector back: until every
   * real pod is terminating (or gone). A pod not yet deleted would be listed ready again, and callers
   * sent to it would be refused a moment later when it gets SIGTERM; a terminating one is listed
   * not ready, so kube-proxy keeps sending callers to the shadow alone.
   */
  async realPodsStopping(): Promise<void> {
    const { kube, log, original, shadowPod } = this.#o;
    const sel = Object.entries(original).map(([k, v]) => `${k}=${v}`).join(',');
    const end = Date.now() + SWITCH_TIMING.endpointsMs;
    for (;;) {
      throwIfInterrupted();
      const pods = await call(kube, 'list', 'pods', () => kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: sel }));
      const running = pods.items.filter((p) => p.metadata?.name !== shadowPod && !p.metadata?.deletionTimestamp);
      if (running.length === 0) return;
      if (Date.now() >= end) {
        log.warn(`${running.map((p) => `pod/${p.metadata!.name}`).join(', ')} still not stopping ${SWITCH_TIMING.endpointsMs / 1000}s after scaling to 0; callers may reach them`);
        return;
      }
      await sleep(SWITCH_TIMING.pollMs / 4);
    }
  }

  /** Scale mode, after the Service got its own selector back: the shadow is still its only ready endpoint. */
  async stillOnlyShadow(): Promise<void> {
    if (!await this.#waitEndpoints(this.#onlyShadow, true)) {
      this.#o.log.warn(`service/${this.#name}'s endpoints did not list the shadow alone after ${SWITCH_TIMING.endpointsMs / 1000}s; some callers may see errors`);
    }
  }

  #onlyShadow = (eps: EndpointView[]): boolean => this.#shadowReady(eps) && eps.every((e) => e.pod === this.#o.shadowPod || !e.ready);

  /**
   * On exit, after the Service was given back: the shadow leaves the endpoints, connections stop
   * arriving here, and those still open finish (bounded). Never throws; says what it could not do.
   */
  async restored(): Promise<void> {
    const { kube, log, shadowPod, mode, original } = this.#o;
    try {
      if (mode === 'scale') {
        // The shadow carries the Deployment's pod labels; dropping the ones the Service selects
        // takes it out of the endpoints while it still forwards what kube-proxy sends meanwhile.
        const labels = Object.fromEntries(Object.keys(original).map((k) => [k, null]));
        const gone = await kube.core.patchNamespacedPod({ namespace: kube.namespace, name: shadowPod, body: { metadata: { labels } } }, mergePatch)
          .then(() => false, (e: unknown) => { if (apiStatus(e) === 404) return true; throw e; });
        if (gone) return;
      }
      const realReady = await this.#readyPods();
      const moved = (eps: EndpointView[]): boolean => !eps.some((e) => e.pod === shadowPod)
        && realReady.every((pod) => eps.some((e) => e.pod === pod && e.ready));
      if (!await this.#waitEndpoints(moved, false)) log.warn(`service/${this.#name}'s endpoints had not moved back after ${SWITCH_TIMING.endpointsMs / 1000}s; callers may see errors`);
      if (this.#listed && this.#probeable()) await this.#quiet();
      await this.#drain();
    } catch (e) {
      log.warn(`could not wait for service/${this.#name} to move back (${(e as Error).message}); callers may see errors`);
    }
  }

  /** Names of the Ready pods the Service's own selector selects (not kt's). */
  async #readyPods(): Promise<string[]> {
    const { kube, original } = this.#o;
    const sel = Object.entries(original).map(([k, v]) => `${k}=${v}`).join(',');
    const pods = await call(kube, 'list', 'pods', () => kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: sel }));
    return pods.items
      .filter((p) => p.metadata?.name !== this.#o.shadowPod && !p.metadata?.deletionTimestamp && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'))
      .map((p) => p.metadata!.name!);
  }

  /** Until no connection has arrived here for quietMs, probing so that there is traffic to see. */
  async #quiet(): Promise<void> {
    const end = Date.now() + SWITCH_TIMING.routedMs;
    let mark = this.traffic.arrivals;
    let since = Date.now();
    while (Date.now() < end) {
      await this.#probe(300);
      if (this.traffic.arrivals !== mark) { mark = this.traffic.arrivals; since = Date.now(); }
      if (Date.now() - since >= SWITCH_TIMING.quietMs) return;
      await sleep(SWITCH_TIMING.pollMs);
    }
    this.#o.log.warn(`connections to service/${this.#name} still arrived here ${SWITCH_TIMING.routedMs / 1000}s after it was given back; callers may see errors`);
  }

  async #drain(): Promise<void> {
    const end = Date.now() + SWITCH_TIMING.drainMs;
    while (this.traffic.open > 0 && Date.now() < end) await sleep(50);
    if (this.traffic.open > 0) this.#o.log.progress(`${this.traffic.open} connection(s) from the cluster still open after ${SWITCH_TIMING.drainMs / 1000}s (kept alive by their callers); closing them`);
  }

  /**
   * --recycle-pods: a rollout restart of the Deployments behind the Service, so callers whose
   * pooled connections are pinned to the old pods reconnect, through the Service, to the shadow.
   */
  async recyclePods(deployments: string[]): Promise<void> {
    const { kube, log } = this.#o;
    const at = new Date().toISOString();
    for (const name of deployments) {
      await call(kube, 'patch', 'deployments', () => appsApi(kube).patchNamespacedDeployment({ namespace: kube.namespace, name, body: {
        spec: { template: { metadata: { annotations: { 'kubectl.kubernetes.io/restartedAt': at } } } },
      } }, mergePatch));
      log.progress(`restarting the pods of deployment/${name} so that kept-alive callers reconnect to this laptop`);
    }
  }
}
