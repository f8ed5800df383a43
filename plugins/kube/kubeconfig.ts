// Loads kubeconfig exactly like kubectl: --kubeconfig, else every file in KUBECONFIG merged
// first-wins (a name defined twice keeps its first definition; the first current-context set
// wins), else ~/.kube/config; then --context and -n/--namespace. Relative file references are
// resolved against the file that names them. client-node cannot do this itself: it throws on a
// name that appears twice.
import { KubeConfig, type ApiConstructor, type ApiType, type RequestContext } from '@kubernetes/client-node';
import { load, dump } from 'js-yaml';
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, dirname, isAbsolute, join, resolve } from 'node:path';
import { wrapApiClient } from './api-errors.ts';
import type { KUBE_FLAGS, Values } from '../cli/cli.ts';
import { UserError } from '../cli/errors.ts';
import { createLogger, type Logger } from '../cli/log.ts';
import { instrumentDispatcher } from './round-trips.ts';

export interface KubeOptions extends KubeOverrides {
  kubeconfig?: string | undefined;
  context?: string | undefined;
  namespace?: string | undefined;
}

/** kubectl's generic flags beyond --kubeconfig, --context and -n (client-go's ConfigOverrides). */
export interface KubeOverrides {
  cluster?: string | undefined;
  user?: string | undefined;
  server?: string | undefined;
  certificateAuthority?: string | undefined;
  insecureSkipTlsVerify?: boolean | undefined;
  tlsServerName?: string | undefined;
  token?: string | undefined;
  clientCertificate?: string | undefined;
  clientKey?: string | undefined;
  as?: string | undefined;
  asGroups?: string[] | undefined;
  asUid?: string | undefined;
  /** Each API request's limit; 0 or unset: none. */
  requestTimeoutMs?: number | undefined;
  /** kubectl's -v: 6 and up logs every API request. */
  verbosity?: number | undefined;
}

/** The kubeconfig part of a command's flags (KUBE_FLAGS). */
export function kubeOptions(o: Values<typeof KUBE_FLAGS>): KubeOptions {
  return {
    kubeconfig: o.kubeconfig, context: o.context, namespace: o.namespace,
    cluster: o.cluster, user: o.user, server: o.server,
    certificateAuthority: o.certificateAuthority, insecureSkipTlsVerify: o.insecureSkipTlsVerify,
    tlsServerName: o.tlsServerName, token: o.token,
    clientCertificate: o.clientCertificate, clientKey: o.clientKey,
    as: o.as, asGroups: o.asGroup.length > 0 ? [...o.asGroup] : undefined, asUid: o.asUid,
    requestTimeoutMs: o.requestTimeout,
    verbosity: o.v === undefined ? undefined : Number(o.v),
  };
}

export interface LoadedKube {
  kc: KubeConfig;
  context: string;
  namespace: string;
  server: string;
  /** The namespace the context names, if it names one. */
  contextNamespace: string | undefined;
}

type Named = { name: string } & Record<string, unknown>;
interface RawConfig {
  clusters?: Named[] | null;
  users?: Named[] | null;
  contexts?: Named[] | null;
  'current-context'?: string;
}

const FILE_FIELDS: Record<string, string[]> = {
  cluster: ['certificate-authority'],
  user: ['client-certificate', 'client-key', 'tokenFile'],
};

function absolutize(entry: Named, key: 'cluster' | 'user', base: string): Named {
  const inner = entry[key];
  if (!inner || typeof inner !== 'object') return entry;
  const copy: Record<string, unknown> = { ...(inner as Record<string, unknown>) };
  for (const f of FILE_FIELDS[key] ?? []) {
    const v = copy[f];
    if (typeof v === 'string' && v !== '' && !isAbsolute(v)) copy[f] = resolve(base, v);
  }
  return { ...entry, [key]: copy };
}

/** The files kubectl would read, in precedence order. */
export function kubeconfigFiles(explicit: string | undefined, env = process.env): string[] {
  if (explicit) return [explicit];
  const list = (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');
  if (list.length > 0) return list;
  return [join(homedir(), '.kube', 'config')];
}

/** Merges raw kubeconfig documents first-wins, as kubectl does. Exported for tests. */
export function mergeFirstWins(docs: { raw: RawConfig; dir: string }[]): RawConfig {
  const out: { clusters: Named[]; users: Named[]; contexts: Named[]; 'current-context'?: string } = { clusters: [], users: [], contexts: [] };
  const seen = { clusters: new Set<string>(), users: new Set<string>(), contexts: new Set<string>() };
  for (const { raw, dir } of docs) {
    for (const c of raw.clusters ?? []) {
      if (seen.clusters.has(c.name)) continue;
      seen.clusters.add(c.name);
      out.clusters.push(absolutize(c, 'cluster', dir));
    }
    for (const u of raw.users ?? []) {
      if (seen.users.has(u.name)) continue;
      seen.users.add(u.name);
      out.users.push(absolutize(u, 'user', dir));
    }
    for (const x of raw.contexts ?? []) {
      if (seen.contexts.has(x.name)) continue;
      seen.contexts.add(x.name);
      out.contexts.push(x);
    }
    if (!out['current-context'] && raw['current-context']) out['current-context'] = raw['current-context'];
  }
  return out;
}

export function loadKube(opts: KubeOptions, env = process.env): LoadedKube {
  const files = kubeconfigFiles(opts.kubeconfig, env);
  const docs: { raw: RawConfig; dir: string }[] = [];
  for (const f of files) {
    if (!existsSync(f)) {
      // kubectl ignores missing files in KUBECONFIG but not an explicit --kubeconfig.
      if (opts.kubeconfig) throw new UserError(`kubeconfig file ${f} does not exist.`);
      continue;
    }
    let raw: unknown;
    try {
      raw = load(readFileSync(f, 'utf8'));
    } catch (e) {
      throw new UserError(`kubeconfig file ${f} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    docs.push({ raw: (raw ?? {}) as RawConfig, dir: dirname(resolve(f)) });
  }
  if (docs.length === 0) throw new UserError(`no kubeconfig found (looked at ${files.join(', ')}); pass --kubeconfig or set KUBECONFIG.`);
  const merged = applyOverrides(mergeFirstWins(docs), opts);
  const context = merged['current-context'];
  const user = (merged.users ?? []).find((u) => u.name === contextField(merged, context, 'user'))?.user as Record<string, unknown> | undefined;
  const kc = new OverriddenKubeConfig({
    groups: Array.isArray(user?.['as-groups']) ? (user['as-groups'] as unknown[]).map(String) : [],
    uid: typeof user?.['as-uid'] === 'string' ? user['as-uid'] : undefined,
    timeoutMs: opts.requestTimeoutMs && opts.requestTimeoutMs > 0 ? Math.max(1, Math.ceil(opts.requestTimeoutMs)) : 0,
    logRequests: (opts.verbosity ?? 0) >= 6 ? createLogger({ debug: true }) : undefined,
  });
  kc.loadFromString(dump({ apiVersion: 'v1', kind: 'Config', ...merged }));
  kc.setCurrentContext(context);
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new UserError(`context "${context}" names a cluster that is not in the kubeconfig.`);
  const contextNamespace = kc.getContextObject(context)?.namespace;
  const namespace = opts.namespace ?? contextNamespace ?? 'default';
  // Every API client made from this config, wherever it is made, fails with one sentence.
  const make = kc.makeApiClient.bind(kc);
  const ctx = { server: cluster.server, contextNamespace: contextNamespace ?? 'default' };
  kc.makeApiClient = <T extends ApiType>(type: ApiConstructor<T>): T => wrapApiClient(make(type), ctx);
  return { kc, context, namespace, server: cluster.server, contextNamespace };
}

function contextField(raw: RawConfig, context: string, field: 'cluster' | 'user'): string {
  const c = (raw.contexts ?? []).find((x) => x.name === context)?.context as Record<string, unknown> | undefined;
  return typeof c?.[field] === 'string' ? c[field] : '';
}

const names = (list: Named[] | null | undefined): string => (list ?? []).map((x) => x.name).join(', ') || 'none';

/**
 * The merged kubeconfig with kubectl's generic flags applied to the context in use, as client-go's
 * DirectClientConfig does: --cluster and --user pick other entries for the context; --server,
 * --certificate-authority, --insecure-skip-tls-verify and --tls-server-name override the cluster
 * (a CA or insecure flag replaces the kubeconfig's CA and insecure setting together; --server
 * drops the kubeconfig's tls-server-name); --token, --client-certificate, --client-key, --as,
 * --as-group and --as-uid override the user. Paths given on the command line are relative to the
 * working directory. Exported for tests.
 */
export function applyOverrides(merged: RawConfig, o: KubeOptions, cwd = process.cwd()): RawConfig & { 'current-context': string } {
  const context = o.context ?? merged['current-context'] ?? '';
  if (!context) throw new UserError('no current context in the kubeconfig; pass --context.');
  const contextEntry = (merged.contexts ?? []).find((c) => c.name === context);
  if (!contextEntry) throw new UserError(`context "${context}" is not in the kubeconfig (it has: ${names(merged.contexts)}).`);
  const ctx: Record<string, unknown> = { ...(contextEntry.context as Record<string, unknown> | undefined ?? {}) };
  if (o.cluster) ctx.cluster = o.cluster;
  if (o.user) ctx.user = o.user;

  const clusterName = typeof ctx.cluster === 'string' ? ctx.cluster : '';
  const clusterEntry = (merged.clusters ?? []).find((c) => c.name === clusterName);
  if (!clusterEntry && o.cluster) throw new UserError(`cluster "${o.cluster}" is not in the kubeconfig (it has: ${names(merged.clusters)}).`);
  if (!clusterEntry && !o.server) throw new UserError(`context "${context}" names a cluster that is not in the kubeconfig.`);
  const cluster: Record<string, unknown> = { ...(clusterEntry?.cluster as Record<string, unknown> | undefined ?? {}) };
  if (o.server) cluster.server = o.server;
  if (o.insecureSkipTlsVerify || o.certificateAuthority) {
    delete cluster['certificate-authority'];
    delete cluster['certificate-authority-data'];
    cluster['insecure-skip-tls-verify'] = o.insecureSkipTlsVerify === true;
    if (o.certificateAuthority) cluster['certificate-authority'] = resolve(cwd, o.certificateAuthority);
  }
  if (o.tlsServerName || o.server) {
    delete cluster['tls-server-name'];
    if (o.tlsServerName) cluster['tls-server-name'] = o.tlsServerName;
  }

  const userName = typeof ctx.user === 'string' ? ctx.user : '';
  const userEntry = (merged.users ?? []).find((u) => u.name === userName);
  if (!userEntry && o.user) throw new UserError(`user "${o.user}" is not in the kubeconfig (it has: ${names(merged.users)}).`);
  const user: Record<string, unknown> = { ...(userEntry?.user as Record<string, unknown> | undefined ?? {}) };
  if (o.token) user.token = o.token;
  for (const [flag, field, value] of [['client-certificate', 'client-certificate', o.clientCertificate], ['client-key', 'client-key', o.clientKey]] as const) {
    if (!value) continue;
    // kubectl refuses a file beside embedded data too: the data would silently win.
    if (user[`${field}-data`]) throw new UserError(`--${flag} cannot be used with the kubeconfig user "${userName}", which embeds ${field}-data; pick another --user.`, 2);
    user[field] = resolve(cwd, value);
  }
  if (o.as) user.as = o.as;
  if (o.asGroups?.length) user['as-groups'] = [...o.asGroups];
  if (o.asUid) user['as-uid'] = o.asUid;
  if (!o.as && (user['as-groups'] || user['as-uid']) && !user.as) {
    throw new UserError('--as-group and --as-uid need --as (the user to impersonate).', 2);
  }

  const FLAGS = 'kt-flags';
  const cName = clusterName || FLAGS;
  const uName = userName || FLAGS;
  const replace = (list: Named[] | null | undefined, name: string, key: string, value: Record<string, unknown>): Named[] => [
    ...(list ?? []).filter((x) => x.name !== name), { name, [key]: value },
  ];
  return {
    ...merged,
    clusters: replace(merged.clusters, cName, 'cluster', cluster),
    users: replace(merged.users, uName, 'user', user),
    contexts: replace(merged.contexts, context, 'context', { ...ctx, cluster: cName, user: uName }),
    'current-context': context,
  };
}

type Dispatcher = NonNullable<ReturnType<RequestContext['getDispatcher']>>;
/** Carries the groups to the dispatcher: fetch joins repeated headers into one, the API server wants one header per group. */
const GROUPS_CARRIER = 'x-kt-impersonate-groups';

interface Extras {
  groups: string[];
  uid: string | undefined;
  timeoutMs: number;
  logRequests: Logger | undefined;
}

/**
 * What client-node leaves out of a kubeconfig user, applied where it builds every request: API
 * calls and watches (applySecurityAuthentication) and the port-forward WebSocket
 * (applyToHTTPSOptions). client-node sends Impersonate-User for `as`, but neither groups nor uid;
 * the per-request timeout goes on API calls only (a watch sets its own signal, and the
 * port-forward lives as long as the session).
 */
class OverriddenKubeConfig extends KubeConfig {
  readonly #x: Extras;
  #shared: ReturnType<RequestContext['getDispatcher']>;

  constructor(extras: Extras) {
    super();
    this.#x = extras;
  }

  override async applySecurityAuthentication(context: RequestContext): Promise<void> {
    await super.applySecurityAuthentication(context);
    // client-node makes a new agent, so a new TCP and TLS connection, for every request: three
    // round trips each instead of one. Its options are the same for every request of this config,
    // so the first one is kept and every request shares its connections (one HTTP/2 connection
    // carries requests sent at once). Every request is also recorded for the round-trip count
    // that --debug prints (round-trips.ts).
    const base = context.getDispatcher();
    if (base) {
      if (!this.#shared) {
        const shared = instrumentDispatcher(base);
        // A connection that cannot be made (refused, timed out, TLS) would otherwise fail only the
        // first request waiting for it, each of the others then trying a connection of its own in
        // turn (ten requests asked at once: minutes). All of them fail with its error at once, and
        // the next request starts over with a new agent.
        (base as unknown as { on(e: 'connectionError', f: (origin: unknown, targets: unknown, err: Error) => void): void }).on('connectionError', (_o, _t, err) => {
          if (this.#shared === shared) this.#shared = undefined;
          (base as unknown as { destroy(e: Error): Promise<void> }).destroy(err).catch(() => {});
        });
        this.#shared = shared;
      }
      context.setDispatcher(this.#shared);
    }
    const x = this.#x;
    if (x.uid) context.setHeaderParam('Impersonate-Uid', x.uid);
    if (x.groups.length > 0) {
      context.setHeaderParam(GROUPS_CARRIER, JSON.stringify(x.groups));
      const d = context.getDispatcher();
      if (d) context.setDispatcher(d.compose((dispatch) => (opts, handler) => dispatch({ ...opts, headers: expandGroups(opts.headers) }, handler)));
    }
    if (x.timeoutMs > 0) {
      const own = context.getSignal();
      const limit = AbortSignal.timeout(x.timeoutMs);
      context.setSignal(own ? AbortSignal.any([own, limit]) : limit);
    }
    x.logRequests?.debug(`${context.getHttpMethod()} ${context.getUrl()}`);
  }

  override async applyToHTTPSOptions(opts: Parameters<KubeConfig['applyToHTTPSOptions']>[0]): Promise<void> {
    await super.applyToHTTPSOptions(opts);
    const x = this.#x;
    const headers: Record<string, string | string[]> = { ...(opts.headers as Record<string, string | string[]> | undefined) };
    if (x.uid) headers['Impersonate-Uid'] = x.uid;
    if (x.groups.length > 0) headers['Impersonate-Group'] = [...x.groups];
    opts.headers = headers;
  }

  // Without any TLS setting client-node sends through fetch's global dispatcher, which the groups
  // cannot be added to; an agent of its own is what client-node makes in every other case. Several
  // groups need HTTP/1.1: undici's HTTP/2 client joins repeated headers into one field, which the
  // API server would read as one group named "a, b".
  override createDispatcherOptions(...args: Parameters<KubeConfig['createDispatcherOptions']>): ReturnType<KubeConfig['createDispatcherOptions']> {
    let o = super.createDispatcherOptions(...args);
    if (o.type === 'none' && this.#x.groups.length > 0) o = { type: 'agent', connect: { keepAlive: true, keepAliveInitialDelay: 30_000 } };
    if (o.type === 'agent' && this.#x.groups.length > 1) o = { ...o, connect: { ...o.connect, allowH2: false } as typeof o.connect };
    return o;
  }
}

/** One `impersonate-group` line per group (undici sends each item of an array value as its own line). */
export function expandGroups(headers: Parameters<Dispatcher['dispatch']>[0]['headers']): Parameters<Dispatcher['dispatch']>[0]['headers'] {
  if (!headers || Array.isArray(headers) || typeof headers !== 'object' || Symbol.iterator in headers) return headers;
  const out: Record<string, string | string[] | undefined> = {};
  let groups: string[] = [];
  for (const [k, v] of Object.entries(headers as Record<string, string | string[] | undefined>)) {
    if (k.toLowerCase() === GROUPS_CARRIER && typeof v === 'string') groups = JSON.parse(v) as string[];
    else out[k] = v;
  }
  if (groups.length > 0) out['impersonate-group'] = groups;
  return out;
}
