// Where route tables come from: a JSON file (tests and local runs), or the one ConfigMap the
// kt plugin on the laptop writes, watched through the Kubernetes API from inside the pod.
// Every source hands on only valid tables: an unreadable or invalid table is logged and the last
// good one stays in force.
//
// RBAC the ConfigMap source needs (list and watch use a field selector on the name, so the Role
// can be narrowed to that one object with resourceNames):
//
//   apiVersion: rbac.authorization.k8s.io/v1
//   kind: Role
//   metadata: { name: NAME, namespace: NS }
//   rules:
//     - apiGroups: [""]
//       resources: ["configmaps"]
//       resourceNames: ["NAME"]          # the KT_ROUTES_CONFIGMAP
//       verbs: ["get", "list", "watch"]
//   ---
//   apiVersion: rbac.authorization.k8s.io/v1
//   kind: RoleBinding
//   metadata: { name: NAME, namespace: NS }
//   roleRef: { apiGroup: rbac.authorization.k8s.io, kind: Role, name: NAME }
//   subjects: [{ kind: ServiceAccount, name: ROUTER_SERVICE_ACCOUNT, namespace: NS }]
import { watch as fsWatch } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { readFile } from 'node:fs/promises';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { basename, dirname } from 'node:path';
import { ROUTER_ENV, ROUTES_KEY } from '../contract/index.ts';
import type { RouteTable } from '../contract/index.ts';
import { InClusterConfigError, SERVICE_ACCOUNT_DIR, inClusterApi as podApi, sendToApi } from '../runtime/kube-api.ts';
import { errorMessage } from '../runtime/log.ts';
import type { Logger } from '../runtime/log.ts';
import { parseRouteTable } from '../contract/route-table.ts';

export interface RouteSource {
  /** For logs: `file PATH` or `configmap NS/NAME`. */
  readonly description: string;
  /** Starts reading; `onTable` gets every valid table that differs from the previous one. */
  start(onTable: (table: RouteTable) => void): void;
  close(): Promise<void>;
}

/** A configuration problem; `message` is one sentence a person can act on. */
export class RouteSourceConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RouteSourceConfigError';
  }
}

// ---------------------------------------------------------------------------------------------
// File

export interface FileSourceOptions {
  path: string;
  log: Logger;
  /** The poll fallback's interval (fs.watch misses some changes, e.g. on network filesystems). Default 1000. */
  pollMs?: number;
  /** Changes within this window are read once. Default 30. */
  debounceMs?: number;
}

/** Reads the table from a JSON file and re-reads it whenever it changes (also when it is replaced by rename). */
export function fileRouteSource(options: FileSourceOptions): RouteSource {
  const { path, log } = options;
  const pollMs = options.pollMs ?? 1000;
  const debounceMs = options.debounceMs ?? 30;
  const description = `file ${path}`;
  let lastText: string | undefined;
  let lastProblem: string | undefined;
  let watcher: FSWatcher | undefined;
  let poller: NodeJS.Timeout | undefined;
  let debounce: NodeJS.Timeout | undefined;
  let reading: Promise<void> | undefined;
  let again = false;
  let closed = false;

  const problem = (level: 'warn' | 'error', msg: string, error: string): void => {
    // A file that stays broken is reported once, not on every poll.
    if (lastProblem === error) return;
    lastProblem = error;
    log[level](msg, { source: description, error });
  };

  const readOnce = async (onTable: (table: RouteTable) => void): Promise<void> => {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      problem('warn', 'route file unreadable; keeping the current table', errorMessage(err));
      return;
    }
    if (closed || text === lastText) return;
    lastText = text;
    let table: RouteTable;
    try {
      table = parseRouteTable(text);
    } catch (err) {
      problem('error', 'route table invalid; keeping the current table', errorMessage(err));
      return;
    }
    lastProblem = undefined;
    onTable(table);
  };

  const read = (onTable: (table: RouteTable) => void): void => {
    if (reading) {
      again = true;
      return;
    }
    reading = readOnce(onTable).finally(() => {
      reading = undefined;
      if (again && !closed) {
        again = false;
        read(onTable);
      }
    });
  };

  return {
    description,
    start(onTable) {
      read(onTable);
      const file = basename(path);
      try {
        // The directory, not the file: editors and `mv` replace the file, which ends a file watch.
        watcher = fsWatch(dirname(path), { persistent: false }, (_event, name) => {
          if (name !== null && name !== file) return;
          clearTimeout(debounce);
          debounce = setTimeout(() => read(onTable), debounceMs);
        });
        watcher.on('error', (err) => {
          log.debug('route file watch failed; polling only', { source: description, error: err.message });
          watcher?.close();
          watcher = undefined;
        });
      } catch (err) {
        log.debug('route file watch unavailable; polling only', { source: description, error: errorMessage(err) });
      }
      poller = setInterval(() => read(onTable), pollMs);
      poller.unref();
    },
    async close() {
      closed = true;
      watcher?.close();
      clearInterval(poller);
      clearTimeout(debounce);
      await reading;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// ConfigMap through the Kubernetes API

export interface ConfigMapSourceOptions {
  namespace: string;
  name: string;
  /** The API server's base URL: https://HOST:PORT in the pod; http:// is accepted (tests). */
  apiServer: string;
  /** The bearer token, read again for every request (projected tokens are rotated). Empty: none. */
  token: () => Promise<string>;
  /** CA bundle for an https API server. */
  ca?: Buffer | string;
  log: Logger;
  /** Reconnect backoff after an error: starts at initialMs, doubles up to maxMs. Default 500 / 30000. */
  backoff?: { initialMs: number; maxMs: number };
  /** How long the API server keeps one watch open. Default 300. */
  watchTimeoutSeconds?: number;
}

/** A failed API request; `status` is the HTTP status when there was one. */
export class KubeApiError extends Error {
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.name = 'KubeApiError';
    this.status = status;
  }
}

interface ConfigMapObject {
  metadata?: { name?: string; resourceVersion?: string };
  data?: Record<string, string>;
}

interface WatchEvent {
  type?: string;
  object?: ConfigMapObject & { code?: number; message?: string; reason?: string };
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The message of a Kubernetes Status body, else the body's start. */
function statusMessage(status: number, body: string): string {
  try {
    const parsed: unknown = JSON.parse(body);
    if (isRecord(parsed) && typeof parsed.message === 'string') return `HTTP ${status}: ${parsed.message}`;
  } catch {
    // not JSON
  }
  return `HTTP ${status}${body ? `: ${body.slice(0, 200)}` : ''}`;
}

/**
 * Watches one ConfigMap: a list with a field selector on its name (for the resourceVersion and the
 * current table), then a watch from there; a watch that ends is resumed from the last version, a
 * 410 Gone starts over with a list, errors are retried with backoff. The last good table stays in
 * force throughout, and also when the ConfigMap is deleted.
 */
export function configMapRouteSource(options: ConfigMapSourceOptions): RouteSource {
  const { namespace, name, log } = options;
  const description = `configmap ${namespace}/${name}`;
  const backoff = options.backoff ?? { initialMs: 500, maxMs: 30_000 };
  const watchTimeout = options.watchTimeoutSeconds ?? 300;
  const collection = `/api/v1/namespaces/${encodeURIComponent(namespace)}/configmaps`;
  const selector = `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;

  let closed = false;
  let current: ClientRequest | undefined;
  let wake: (() => void) | undefined;
  let loop: Promise<void> | undefined;
  let lastText: string | undefined;
  let lastProblem: string | undefined;

  const get = async (path: string, timeoutMs: number): Promise<IncomingMessage> => {
    const token = await options.token();
    if (closed) throw new KubeApiError('closed');
    return new Promise((resolve, reject) => {
      const req = sendToApi(options, token, 'GET', path, { timeoutMs });
      req.once('response', resolve);
      current = req;
      req.on('timeout', () => req.destroy(new KubeApiError(`no data from the API server for ${Math.round(timeoutMs / 1000)} s`)));
      req.on('error', reject);
      req.end();
    });
  };

  const readBody = async (res: IncomingMessage): Promise<string> => {
    const chunks: Buffer[] = [];
    for await (const chunk of res) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks).toString('utf8');
  };

  const apply = (object: ConfigMapObject, onTable: (table: RouteTable) => void): void => {
    const text = object.data?.[ROUTES_KEY];
    if (text === undefined) {
      const problem = `the ConfigMap has no key ${ROUTES_KEY}`;
      if (lastProblem !== problem) log.error('route table missing; keeping the current table', { source: description, error: problem });
      lastProblem = problem;
      return;
    }
    if (text === lastText) return;
    lastText = text;
    try {
      const table = parseRouteTable(text);
      lastProblem = undefined;
      onTable(table);
    } catch (err) {
      lastProblem = errorMessage(err);
      log.error('route table invalid; keeping the current table', { source: description, error: lastProblem });
    }
  };

  /** Lists; returns the collection's resourceVersion to watch from. */
  const list = async (onTable: (table: RouteTable) => void): Promise<string> => {
    const res = await get(`${collection}?${selector}`, 30_000);
    const body = await readBody(res);
    if (res.statusCode !== 200) throw new KubeApiError(`list ${description}: ${statusMessage(res.statusCode ?? 0, body)}`, res.statusCode);
    let parsed: unknown;
    try {
      parsed = JSON.parse(body);
    } catch {
      throw new KubeApiError(`list ${description}: the reply is not JSON`);
    }
    if (!isRecord(parsed) || !Array.isArray(parsed.items)) throw new KubeApiError(`list ${description}: the reply is not a list`);
    const meta = isRecord(parsed.metadata) ? parsed.metadata : {};
    const rv = typeof meta.resourceVersion === 'string' ? meta.resourceVersion : '';
    const item = parsed.items.find((i: unknown): i is ConfigMapObject => isRecord(i) && isRecord(i.metadata) && i.metadata.name === name);
    if (item) apply(item, onTable);
    else {
      const problem = 'the ConfigMap does not exist';
      if (lastProblem !== problem) log.warn('route table ConfigMap not found; keeping the current table', { source: description });
      lastProblem = problem;
    }
    return rv;
  };

  /** The version the next watch starts from; undefined: list first. Advanced by every event. */
  let resourceVersion: string | undefined;

  /**
   * Watches from `resourceVersion` until the API server ends the watch. On 410 Gone the version
   * is forgotten (list again). `healthy` is called once the API server has accepted the watch.
   */
  const watch = async (rv: string, onTable: (table: RouteTable) => void, healthy: () => void): Promise<void> => {
    const path = `${collection}?${selector}&watch=1&allowWatchBookmarks=true&timeoutSeconds=${watchTimeout}&resourceVersion=${encodeURIComponent(rv)}`;
    const res = await get(path, (watchTimeout + 30) * 1000);
    if (res.statusCode === 410) {
      res.resume();
      resourceVersion = undefined;
      return;
    }
    if (res.statusCode !== 200) {
      const body = await readBody(res);
      throw new KubeApiError(`watch ${description}: ${statusMessage(res.statusCode ?? 0, body)}`, res.statusCode);
    }
    healthy();
    let pending = '';
    res.setEncoding('utf8');
    for await (const chunk of res) {
      pending += chunk as string;
      let newline: number;
      while ((newline = pending.indexOf('\n')) >= 0) {
        const line = pending.slice(0, newline).trim();
        pending = pending.slice(newline + 1);
        if (line === '') continue;
        let event: WatchEvent;
        try {
          event = JSON.parse(line) as WatchEvent;
        } catch {
          throw new KubeApiError(`watch ${description}: an event is not JSON`);
        }
        const object = event.object ?? {};
        if (event.type === 'ERROR') {
          if (object.code === 410) {
            res.destroy();
            resourceVersion = undefined;
            return;
          }
          throw new KubeApiError(`watch ${description}: ${object.message ?? 'error event'}`, object.code);
        }
        const next = object.metadata?.resourceVersion;
        if (next) resourceVersion = next;
        if (event.type === 'ADDED' || event.type === 'MODIFIED') {
          if (object.metadata?.name === name) apply(object, onTable);
        } else if (event.type === 'DELETED') {
          log.warn('route table ConfigMap deleted; keeping the current table', { source: description });
          lastText = undefined;
        }
      }
    }
  };

  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done(): void {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      }
      wake = done;
    });

  const run = async (onTable: (table: RouteTable) => void): Promise<void> => {
    let delay = backoff.initialMs;
    let failing = false;
    while (!closed) {
      const started = Date.now();
      let accepted = false;
      try {
        resourceVersion ??= await list(onTable);
        await watch(resourceVersion, onTable, () => {
          accepted = true;
          if (failing) log.info('route source reconnected', { source: description });
          failing = false;
        });
        // A watch that the server accepts and ends at once, again and again, must not spin.
        if (accepted && Date.now() - started > 1000) delay = backoff.initialMs;
        else if (accepted) {
          await sleep(delay);
          delay = Math.min(delay * 2, backoff.maxMs);
        }
      } catch (err) {
        if (closed) break;
        if (err instanceof KubeApiError && err.status === 410) resourceVersion = undefined;
        log.warn('route source error; retrying', { source: description, error: errorMessage(err), retryInMs: delay });
        failing = true;
        await sleep(delay);
        delay = Math.min(delay * 2, backoff.maxMs);
      }
    }
  };

  return {
    description,
    start(onTable) {
      loop ??= run(onTable);
    },
    async close() {
      closed = true;
      current?.destroy();
      wake?.();
      await loop;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// From the environment

export { SERVICE_ACCOUNT_DIR };

type Env = Readonly<Record<string, string | undefined>>;

/** The in-cluster API server and credentials (runtime/kube-api.ts), or why the ConfigMap source cannot use them. */
export async function inClusterApi(env: Env, dir = SERVICE_ACCOUNT_DIR): Promise<{ apiServer: string; token: () => Promise<string>; ca?: Buffer | string | undefined }> {
  try {
    return await podApi(env, dir);
  } catch (err) {
    if (err instanceof InClusterConfigError) throw new RouteSourceConfigError(`the ConfigMap route source: ${err.message}`);
    throw err;
  }
}

/** The source the environment names: ROUTER_ENV.routesFile, else ROUTER_ENV.routesConfigMap in ROUTER_ENV.namespace. */
export async function routeSourceFromEnv(env: Env, log: Logger): Promise<RouteSource> {
  const file = env[ROUTER_ENV.routesFile]?.trim();
  if (file) return fileRouteSource({ path: file, log });
  const name = env[ROUTER_ENV.routesConfigMap]?.trim();
  if (!name) {
    throw new RouteSourceConfigError(`set ${ROUTER_ENV.routesConfigMap} (with ${ROUTER_ENV.namespace}) or ${ROUTER_ENV.routesFile} to say where the route table is`);
  }
  let namespace = env[ROUTER_ENV.namespace]?.trim();
  if (!namespace) {
    try {
      namespace = (await readFile(`${SERVICE_ACCOUNT_DIR}/namespace`, 'utf8')).trim();
    } catch {
      // reported below
    }
  }
  if (!namespace) throw new RouteSourceConfigError(`${ROUTER_ENV.namespace} must name the namespace of ${ROUTER_ENV.routesConfigMap}`);
  const api = await inClusterApi(env);
  return configMapRouteSource({ namespace, name, log, ...api });
}
