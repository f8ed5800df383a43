// The router: one process per meshed Service, shared by every developer meshing it. It listens on
// every port of the route table and sends each HTTP request (HTTP/1.1, WebSocket, HTTP/2, gRPC) to
// the developer whose version its header or baggage names, everything else to the real pods.
// Tables change live: requests in flight finish on their backend, new ones use the new table.
import { hostname } from 'node:os';
import { CONTRACT_VERSION, ROUTER_PORT, ROUTER_STATUS } from '../contract/index.ts';
import type { RouterStatus, RouteTable } from '../contract/index.ts';
import { errorMessage, silentLogger } from '../runtime/log.ts';
import type { Logger } from '../runtime/log.ts';
import { createFailureLog, identityDial } from './backend-errors.ts';
import type { Dial } from './backend-errors.ts';
import { createH2Pool, createH2Router } from './h2-router.ts';
import { startHealthServer } from '../runtime/health.ts';
import { createHttp1Backends, createHttpRouter } from './http-router.ts';
import { createFastHttp1 } from './http1/http1-fast.ts';
import type { Address, Http1Forwarder } from './http-router.ts';
import { listenHttpPort } from './listener.ts';
import type { PortListener } from './listener.ts';
import type { RouteSource } from './route-source.ts';
import { compileTable, diffTables, sameTable } from './routes.ts';
import type { CompiledTable, PortProtocol } from './routes.ts';
import { listenTcpPort } from './tcp.ts';

export interface RouterOptions {
  source: RouteSource;
  log?: Logger;
  /** One debug line per request (KT_LOG_LEVEL=debug). Default false. */
  logRequests?: boolean;
  /** Address every listener binds; undefined: all interfaces. */
  host?: string;
  /** Default ROUTER_PORT.health; 0 picks a free port. */
  healthPort?: number;
  /** The port to bind for a table port. Default: the same port; tests return 0. */
  listenPort?: (port: number) => number;
  /** The address dialled for a table host:port. Default: as is; tests point names at loopback. */
  dial?: Dial;
  /** Default 10000. */
  connectTimeoutMs?: number;
  /** Backend failures are logged at most once per destination and reason in this window. Default 10000. */
  failureLogIntervalMs?: number;
  /** A port that could not be bound is tried again after this long. Default 2000. */
  retryListenMs?: number;
  /** Connections on a port the table dropped get this long to finish. Default 10000. */
  portGraceMs?: number;
  /** How plain HTTP/1 requests are forwarded. Default 'fast' (router/http1/http1-fast.ts). */
  http1Forwarder?: Http1Forwarder;
  /**
   * What the router answers the laptop's probe with (contract ROUTER_PROBE). Default the host
   * name, which in a pod is the pod's name (kt never sets spec.hostname on the router).
   */
  podName?: string;
  /** The contract version reported on ROUTER_STATUS; default CONTRACT_VERSION (tests: the knob). */
  contractVersion?: string;
}

export interface RouterPorts {
  readonly health: number;
  /** Table port -> bound port, for the ports listening now (live). */
  readonly traffic: ReadonlyMap<number, number>;
}

export interface RouterHandle {
  readonly ports: RouterPorts;
  /** The table in force, or undefined before the first one. */
  table(): RouteTable | undefined;
  /** Undefined when ready (a table is loaded and all its ports listen), else why not. */
  notReady(): string | undefined;
  /** Resolves the first time the router is ready. */
  ready(): Promise<void>;
  /** Stops listening; open connections get `graceMs` (default 5000) to finish, then are cut. */
  close(graceMs?: number): Promise<void>;
  /**
   * How the router leaves on SIGTERM: not ready at once; for `lingerMs` it still accepts (callers
   * whose kube-proxy has not yet seen the endpoint go) while telling every caller to reconnect
   * (PortListener.drain); then close(graceMs).
   */
  drain(lingerMs: number, graceMs: number): Promise<void>;
}

interface OpenPort {
  protocol: PortProtocol;
  listener: PortListener;
}

function describeRoute(route: { version: string; target: string; session: string; user: string }): Record<string, string> {
  return { version: route.version, target: route.target, session: route.session, user: route.user };
}

export async function startRouter(options: RouterOptions): Promise<RouterHandle> {
  const log = options.log ?? silentLogger;
  const logRequests = options.logRequests ?? false;
  const dial = options.dial ?? identityDial;
  const listenPort = options.listenPort ?? ((port: number) => port);
  const retryListenMs = options.retryListenMs ?? 2000;
  const portGraceMs = options.portGraceMs ?? 10_000;
  const failures = createFailureLog({ log, intervalMs: options.failureLogIntervalMs });
  const backends = createHttp1Backends({ connectTimeoutMs: options.connectTimeoutMs });
  const pool = createH2Pool(log);
  const source = options.source;
  const forwarder = options.http1Forwarder ?? 'fast';
  const podName = options.podName ?? hostname();
  const contractVersion = options.contractVersion ?? CONTRACT_VERSION;

  let compiled: CompiledTable | undefined;
  const current = (): CompiledTable => {
    // Listeners exist only once a table is in force.
    if (compiled === undefined) throw new Error('no route table');
    return compiled;
  };
  const open = new Map<number, OpenPort>();
  const traffic = new Map<number, number>();
  const bindErrors = new Map<number, string>();
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;
  let draining = false;
  let markReady: () => void = () => {};
  const readyOnce = new Promise<void>((resolve) => (markReady = resolve));

  const notReady = (): string | undefined => {
    if (closed || draining) return 'shutting down';
    if (compiled === undefined) return `no route table loaded yet from ${source.description}`;
    const [first] = bindErrors.values();
    if (first !== undefined) return first;
    for (const { port } of compiled.table.ports) if (!open.has(port)) return `port ${port} is not listening yet`;
    return undefined;
  };

  const openPort = async (port: number, protocol: PortProtocol): Promise<PortListener> => {
    const common = { table: current, dial, failures, log, logRequests, podName };
    if (protocol === 'tcp') {
      return listenTcpPort({ ...common, host: options.host, listenPort: listenPort(port), port, connectTimeoutMs: options.connectTimeoutMs });
    }
    return listenHttpPort({
      host: options.host,
      port: listenPort(port),
      http1: createHttpRouter({ ...common, port, backends, forwarder }),
      h2: createH2Router({ ...common, port, pool }),
      fast: forwarder === 'fast' ? createFastHttp1({ ...common, port, pool: backends.raw }) : undefined,
    });
  };

  /** Opens the table's missing ports and closes the ones it dropped (or whose protocol changed). */
  const syncPorts = async (): Promise<void> => {
    if (compiled === undefined || closed) return;
    const want = compiled.ports;
    for (const [port, entry] of open) {
      if (want.get(port) === entry.protocol) continue;
      open.delete(port);
      traffic.delete(port);
      log.info('port closed', { port, protocol: entry.protocol });
      void entry.listener.close(portGraceMs);
    }
    for (const port of bindErrors.keys()) if (!want.has(port)) bindErrors.delete(port);
    await Promise.all(
      [...want].map(async ([port, protocol]) => {
        if (open.has(port)) return;
        try {
          const listener = await openPort(port, protocol);
          if (closed || compiled?.ports.get(port) !== protocol) {
            void listener.close(0);
            return;
          }
          if (draining) listener.drain();
          open.set(port, { protocol, listener });
          traffic.set(port, listener.boundPort);
          if (bindErrors.delete(port)) log.info('port listening after retry', { port, protocol });
          log.info('listening', { port, boundPort: listener.boundPort, protocol });
        } catch (err) {
          const message = errorMessage(err);
          if (bindErrors.get(port) !== message) log.error('cannot listen; retrying', { port, protocol, error: message });
          bindErrors.set(port, message);
        }
      }),
    );
    if (bindErrors.size > 0 && retryTimer === undefined && !closed) {
      retryTimer = setTimeout(() => {
        retryTimer = undefined;
        enqueue(syncPorts);
      }, retryListenMs);
    }
  };

  /** Idle backend connections to hosts no table port refers to any more are closed. */
  const prune = (): void => {
    if (compiled === undefined) return;
    const keep: Address[] = [];
    for (const { port, protocol } of compiled.table.ports) {
      if (protocol !== 'http') continue;
      keep.push(dial(compiled.table.defaultTarget, port));
      for (const route of compiled.table.routes) keep.push(dial(route.target, port));
    }
    backends.prune(keep);
    pool.prune(keep);
  };

  const apply = async (table: RouteTable): Promise<void> => {
    if (closed) return;
    const previous = compiled?.table;
    if (sameTable(previous, table)) return;
    compiled = compileTable(table);
    if (previous === undefined) {
      log.info('route table loaded', {
        source: source.description,
        header: table.header,
        defaultTarget: table.defaultTarget,
        ports: table.ports,
        routes: table.routes.map(describeRoute),
      });
    } else {
      const diff = diffTables(previous, table);
      const fields: Record<string, unknown> = {
        source: source.description,
        added: diff.added.map(describeRoute),
        removed: diff.removed.map(describeRoute),
      };
      if (diff.changed.length > 0) fields.changed = diff.changed.map((c) => ({ before: describeRoute(c.before), after: describeRoute(c.after) }));
      if (diff.portsAdded.length > 0) fields.portsAdded = diff.portsAdded;
      if (diff.portsRemoved.length > 0) fields.portsRemoved = diff.portsRemoved;
      if (diff.header) fields.header = diff.header;
      if (diff.defaultTarget) fields.defaultTarget = diff.defaultTarget;
      log.info('route table changed', fields);
    }
    await syncPorts();
    prune();
  };

  let queue: Promise<void> = Promise.resolve();
  function enqueue(step: () => Promise<void>): void {
    queue = queue
      .then(step)
      .catch((err: unknown) => log.error('applying the route table failed', { error: errorMessage(err) }))
      .then(() => {
        if (notReady() === undefined) markReady();
      });
  }

  const health = await startHealthServer({
    host: options.host,
    port: options.healthPort ?? ROUTER_PORT.health,
    notReady,
    json: { [ROUTER_STATUS.path]: { get: (): RouterStatus | undefined => compiled && { ...compiled.table, [ROUTER_STATUS.versionField]: contractVersion }, unavailable: 'no route table loaded yet' } },
  });
  log.info('router starting', { source: source.description, health: health.port });
  source.start((table) => enqueue(() => apply(table)));

  let closing: Promise<void> | undefined;
  let drained: Promise<void> | undefined;
  const close = (graceMs = 5000): Promise<void> => {
    closing ??= (async () => {
      closed = true;
      clearTimeout(retryTimer);
      await source.close();
      await queue;
      const listeners = [...open.values()];
      open.clear();
      traffic.clear();
      await Promise.all([...listeners.map((p) => p.listener.close(graceMs)), health.close()]);
      backends.close();
      pool.close();
      log.info('router stopped', {});
    })();
    return closing;
  };
  return {
    ports: { health: health.port, traffic },
    table: () => compiled?.table,
    notReady,
    ready: () => readyOnce,
    close,
    drain(lingerMs, graceMs) {
      drained ??= (async () => {
        draining = true;
        log.info('draining', { lingerMs, graceMs });
        for (const { listener } of open.values()) listener.drain();
        await new Promise((resolve) => setTimeout(resolve, lingerMs));
        await close(graceMs);
      })();
      return drained;
    },
  };
}
