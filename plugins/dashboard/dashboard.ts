// kubectl kt-dashboard: the state of a shared namespace (or all of them) in a browser, live, with
// the user's own kubeconfig and rights; or, with -o json|yaml, the same model once, for scripts.
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { isIP } from 'node:net';
import type { KubernetesObject, V1ConfigMap, V1Deployment, V1EndpointSlice, V1Pod, V1Service } from '@kubernetes/client-node';
import type { Options } from '../cli/cli.ts';
import type { DASHBOARD_FLAGS } from './flags.ts';
import { UserError } from '../cli/errors.ts';
import { createLogger } from '../cli/log.ts';
import { clusterNow, type Kube } from '../kube/kube.ts';
import { kubeFromFlags } from '../session/shadow-session.ts';
import { listLocalSessions } from '../session/local-state.ts';
import { listSessions } from '../housekeeping/sessions.ts';
import { cleanSession } from '../housekeeping/clean.ts';
import { printDocument } from '../housekeeping/schema.ts';
import { dashboard, namespaceView, type Dashboard } from './model.ts';
import { startFeeds, type Feeds, type KindName } from './watch.ts';
import { allowedHosts, newToken } from './security.ts';
import { startServer, type CleanResult } from './server.ts';

/** Ages and staleness move with the clock, not only with events: the page is refreshed this often. */
const REFRESH_MS = 5_000;
const CLOCK_MS = 60_000;
const WILDCARD = new Set(['0.0.0.0', '::']);

function byNamespace<T extends KubernetesObject>(items: KubernetesObject[] | undefined, ns: string): T[] | undefined {
  return items?.filter((o) => o.metadata?.namespace === ns) as T[] | undefined;
}

/** The model from what the feeds hold now. */
export function buildModel(feeds: Pick<Feeds, 'get' | 'hidden'>, scope: string | undefined, now: number): Dashboard {
  const services = feeds.get('services') ?? [];
  const names = scope ? [scope] : [...new Set(services.map((s) => s.metadata!.namespace!))].sort();
  const local = listLocalSessions();
  const views = names.map((ns) => namespaceView({
    namespace: ns,
    services: byNamespace<V1Service>(services, ns)!,
    pods: byNamespace<V1Pod>(feeds.get('pods'), ns),
    deployments: byNamespace<V1Deployment>(feeds.get('deployments'), ns),
    configMaps: byNamespace<V1ConfigMap>(feeds.get('configmaps'), ns),
    endpointSlices: byNamespace<V1EndpointSlice>(feeds.get('endpointslices'), ns),
    hidden: feeds.hidden,
  }, now, local));
  // Namespaces where kt is at work come first.
  const busy = (v: (typeof views)[number]): number => (v.sessions.length > 0 || v.services.some((s) => s.state !== 'natural') ? 0 : 1);
  return dashboard(scope ? views : views.sort((a, b) => busy(a) - busy(b) || a.name.localeCompare(b.name)), now);
}

function parsePort(text: string | undefined): number {
  if (text === undefined) return 0;
  const n = Number(text);
  if (!/^\d+$/.test(text) || n > 65535) throw new UserError(`--port must be a port number (0-65535), not "${text}".`, 2);
  return n;
}

function listenError(e: NodeJS.ErrnoException, address: string, port: number): Error {
  if (e.code === 'EADDRINUSE') return new UserError(`port ${port} on ${address} is in use; pick another with --port (or --port 0 for any free one).`);
  if (e.code === 'EADDRNOTAVAIL') return new UserError(`${address} is not an address of this machine; --address takes one of its own addresses (default 127.0.0.1).`);
  if (e.code === 'EACCES') return new UserError(`may not listen on port ${port} (a port below 1024 needs root); pick another with --port.`);
  return e;
}

function openBrowser(url: string): void {
  const [cmd, args] = process.platform === 'darwin' ? ['open', [url]] : process.platform === 'win32' ? ['cmd', ['/c', 'start', '', url]] : ['xdg-open', [url]];
  const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true });
  child.on('error', () => process.stderr.write(`kt-dashboard: could not open a browser (${cmd}); open the URL above by hand.\n`));
  child.unref();
}

async function clean(kube: Kube, scope: string | undefined, namespace: string, id: string, dryRun: boolean): Promise<CleanResult> {
  if (scope && namespace !== scope) return { status: 400, body: { error: `this dashboard shows namespace ${scope} only` } };
  const kubeNs: Kube = { ...kube, namespace };
  // Judged afresh, never from the page: the session may have come back meanwhile.
  const { sessions } = await listSessions(kubeNs, { allNamespaces: false });
  const s = sessions.find((x) => x.id === id);
  if (!s) return { status: 404, body: { error: `no session ${id} in namespace ${namespace} (already cleaned?)` } };
  if (s.state === 'healthy') return { status: 409, body: { error: `session ${id} of ${s.user} is live (heartbeat ${Math.round(s.heartbeatAgeMs / 1000)}s ago); only stale or orphaned sessions are cleaned` } };
  return { status: 200, body: await cleanSession(kubeNs, s, dryRun) };
}


export async function runDashboard(o: Options<typeof DASHBOARD_FLAGS>): Promise<number> {
  const log = createLogger({ debug: o.debug });
  const kube = kubeFromFlags(o);
  const scope = o.allNamespaces ? undefined : kube.namespace;
  const out = o.output;
  const port = parsePort(o.port);
  const address = o.address;
  if (!isIP(address)) throw new UserError(`--address takes an IP address of this machine (e.g. 127.0.0.1), not "${address}".`, 2);

  let offset = 0;
  const syncClock = async (): Promise<void> => {
    try { offset = (await clusterNow(kube)) - Date.now(); } catch { /* keep the last offset */ }
  };
  await syncClock();
  const now = (): number => Date.now() + offset;

  let dirty: NodeJS.Timeout | undefined;
  let publish = (): void => {};
  let generation = 0;
  let feedsReady = false;
  const changed = (): void => {
    if (!feedsReady || dirty) return;
    // Events come in bursts (a Service patched, its EndpointSlices, the pods): one update for them.
    dirty = setTimeout(() => { dirty = undefined; generation++; publish(); }, 100);
  };
  const feeds = await startFeeds(kube, scope, changed);
  feedsReady = true;
  const current = (): { model: Dashboard; generation: number } => ({ model: buildModel(feeds, scope, now()), generation });

  if (out === 'json' || out === 'yaml') {
    feeds.stop();
    process.stdout.write(printDocument(current().model, out));
    return 0;
  }

  const token = newToken();
  const hosts = WILDCARD.has(address) ? undefined : allowedHosts(address, port);
  let srv;
  try {
    srv = await startServer({
      address, port, token, scope: scope ? `namespace ${scope}` : 'all namespaces',
      hosts: hosts ?? undefined, current,
      clean: async (ns, id, dryRun) => { const r = await clean(kube, scope, ns, id, dryRun); if (!dryRun) changed(); return r; },
    });
  } catch (e) {
    feeds.stop();
    throw listenError(e as NodeJS.ErrnoException, address, port);
  }
  // With --port 0 the Host names are known only now.
  const realHosts = WILDCARD.has(address) ? undefined : allowedHosts(address, srv.port);
  if (hosts && realHosts) { hosts.clear(); for (const h of realHosts) hosts.add(h); }
  publish = srv.publish;
  const shownHost = WILDCARD.has(address) ? hostname() : address.includes(':') ? `[${address}]` : address;
  const url = `http://${shownHost}:${srv.port}/?token=${token}`;
  process.stdout.write(`kt-dashboard: ${scope ? `namespace ${scope}` : 'all namespaces'} of context ${kube.context}, live at\n\n    ${url}\n\n`);
  if (!['127.0.0.1', '::1'].includes(address)) log.warn(`listening on ${address}: anyone who can reach it and has the URL can see the namespace and clean stale sessions`);
  const polled: KindName[] = feeds.polled;
  if (polled.length > 0) log.info(`you may not watch ${polled.join(', ')}: listed every second instead`);
  for (const h of feeds.hidden) log.warn(`not shown: you may not ${h}`);
  process.stdout.write('Press Ctrl-C to stop.\n');
  if (o.open) openBrowser(url);

  const refresh = setInterval(() => { generation++; publish(); }, REFRESH_MS);
  const clock = setInterval(() => void syncClock(), CLOCK_MS);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    for (const s of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) process.once(s, () => resolve(s));
  });
  clearInterval(refresh);
  clearInterval(clock);
  feeds.stop();
  await srv.close();
  log.debug(`stopped on ${signal}`);
  return 0;
}
