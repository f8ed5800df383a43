// Every failure of a Kubernetes API call as one sentence a user can act on. client-node's own
// messages are no use to a user: an ApiException's message is the whole HTTP response (status,
// body and every header), and an unreachable server is fetch's "fetch failed", with the real cause
// nested in `error.cause`. Every API client kt makes goes through wrapApiClient, so no path can
// print those.
import { ApiException } from '@kubernetes/client-node';
import { UserError } from '../cli/errors.ts';

export interface ApiContext {
  /** The API server's URL, as the kubeconfig names it. */
  server: string;
  /** The namespace the kubeconfig's context names (the user's usual one), to catch a mistyped -n. */
  contextNamespace?: string | undefined;
}

/** What was attempted: a verb on a resource, in a namespace or cluster-wide. */
export interface Attempt {
  verb: string;
  resource: string;
  namespace?: string | undefined;
}

/** A request the API server refused; keeps the status code and body, its message is one sentence. */
export class KubeApiError extends ApiException<unknown> {
  override readonly name = 'KubeApiError';
  readonly attempt: Attempt;
  readonly context: ApiContext;
  constructor(e: ApiException<unknown>, attempt: Attempt, context: ApiContext) {
    super(e.code, '', e.body, e.headers);
    this.attempt = attempt;
    this.context = context;
    this.message = describeApiException(e, attempt, context);
  }
}

/** The API server could not be reached, or did not answer like one. */
export class ApiUnreachable extends UserError {
  constructor(message: string, cause: unknown) {
    super(message);
    this.cause = cause;
  }
}

interface Status {
  message?: string;
  reason?: string;
  details?: { name?: string; kind?: string; group?: string };
}

function statusOf(e: ApiException<unknown>): Status | undefined {
  let body: unknown = e.body;
  if (typeof body === 'string') {
    try { body = JSON.parse(body); } catch { return undefined; }
  }
  return body && typeof body === 'object' ? body as Status : undefined;
}

const firstLine = (s: string): string => s.split('\n')[0]!.trim().replace(/[.:]$/, '');

/** The request RBAC refused, from the API server's standard 403 message. */
export interface Refusal {
  verb: string;
  resource: string;
  apiGroup: string;
  /** Undefined for a cluster-scoped request. */
  namespace: string | undefined;
}

export function rbacRefusal(e: unknown): Refusal | undefined {
  if (!(e instanceof ApiException) || e.code !== 403) return undefined;
  const m = /cannot (\S+) resource "([^"]+)" in API group "([^"]*)"(?: in the namespace "([^"]+)")?/.exec(statusOf(e)?.message ?? '');
  if (!m) return undefined;
  return { verb: m[1]!, resource: m[2]!, apiGroup: m[3]!, namespace: m[4] };
}

/** A Role rule in the YAML flow style of plugins/rbac/kt-developer.yaml. */
export function ruleText(r: { apiGroup: string; resource: string; verb: string }): string {
  return `{apiGroups: ["${r.apiGroup}"], resources: [${r.resource}], verbs: [${r.verb}]}`;
}

/**
 * The rules a Role would have granted beyond what the user holds: the API server refuses to let
 * anyone create a Role that gives more than they have themselves ("escalation").
 */
export function escalatedRules(e: unknown): { apiGroup: string; resource: string; verb: string }[] {
  if (!(e instanceof ApiException) || e.code !== 403) return [];
  const text = statusOf(e)?.message ?? '';
  if (!text.includes('attempting to grant RBAC permissions not currently held')) return [];
  const out: { apiGroup: string; resource: string; verb: string }[] = [];
  for (const m of text.matchAll(/\{APIGroups:\[([^\]]*)\], Resources:\[([^\]]*)\](?:, ResourceNames:\[[^\]]*\])?, Verbs:\[([^\]]*)\]\}/g)) {
    const items = (s: string): string[] => (s.match(/"[^"]*"/g) ?? []).map((x) => x.slice(1, -1));
    for (const g of items(m[1]!)) for (const r of items(m[2]!)) for (const v of items(m[3]!)) out.push({ apiGroup: g, resource: r, verb: v });
  }
  return out;
}

/** Which namespace's Role to ask for, and whether -n may be the real problem. */
function namespaceHint(ns: string | undefined, ctx: ApiContext): string {
  if (!ns || !ctx.contextNamespace || ns === ctx.contextNamespace) return '';
  return ` (is -n right? the context's namespace is "${ctx.contextNamespace}")`;
}

/** The sentence for a right RBAC refused: the rule to ask for, and where every rule kt needs is. */
export function missingPermission(r: Refusal, ctx: ApiContext = { server: '' }): string {
  const scope = r.namespace ? ` in namespace "${r.namespace}"` : ' cluster-wide';
  const bound = r.namespace ? `a Role bound to you in "${r.namespace}"` : 'a ClusterRole bound to you';
  return `missing permission: cannot ${r.verb} ${r.resource}${scope} (403 Forbidden)${namespaceHint(r.namespace, ctx)}; `
    + `kt needs the rule ${ruleText(r)} in ${bound} ('kubectl kt-connect rbac' prints every rule kt needs).`;
}

export function describeApiException(e: ApiException<unknown>, a: Attempt, ctx: ApiContext): string {
  const status = statusOf(e);
  const where = a.namespace ? ` in namespace "${a.namespace}"` : '';
  if (e.code === 401) return `the API server ${ctx.server} rejected the credentials (401 Unauthorized); check the kubeconfig's user (an expired token?).`;
  if (e.code === 403) {
    const r = rbacRefusal(e);
    if (r) return missingPermission(r, ctx);
    // Admission (Pod Security, quotas...) also answers 403, and is not about RBAC.
    return `the API server refused to ${a.verb} ${a.resource}${where}: ${firstLine(status?.message ?? 'forbidden')} (403).`;
  }
  if (e.code === 404 && (status?.details?.kind === 'namespaces' || a.resource === 'namespaces')) {
    return `namespace "${status?.details?.name ?? a.namespace}" does not exist${namespaceHint(a.namespace, ctx)}.`;
  }
  if (status?.message) return `could not ${a.verb} ${a.resource}${where}: ${firstLine(status.message)} (HTTP ${e.code}).`;
  return `the API server ${ctx.server} answered HTTP ${e.code} to ${a.verb} ${a.resource}${where}.`;
}

/** The errors of a failed request, outermost first: fetch nests the real cause, undici may aggregate. */
function causes(e: unknown): (Error & { code?: unknown })[] {
  const out: (Error & { code?: unknown })[] = [];
  const seen = new Set<unknown>();
  const walk = (x: unknown): void => {
    if (!(x instanceof Error) || seen.has(x)) return;
    seen.add(x);
    out.push(x);
    if (x instanceof AggregateError) for (const inner of x.errors) walk(inner);
    walk(x.cause);
  };
  walk(e);
  return out;
}

const TLS_UNKNOWN_CA = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE', 'UNABLE_TO_GET_ISSUER_CERT', 'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN', 'DEPTH_ZERO_SELF_SIGNED_CERT', 'CERT_SIGNATURE_FAILURE',
]);

/** Why a request never got an answer, as a clause; undefined when `e` is not a transport failure. */
export function transportCause(e: unknown, server: string): string | undefined {
  let host = server;
  try { host = new URL(server).hostname; } catch { /* the URL itself is reported */ }
  for (const c of causes(e)) {
    const code = typeof c.code === 'string' ? c.code : '';
    if (code === 'ECONNREFUSED') return 'the connection was refused (nothing listens on that address and port)';
    if (code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'ETIMEDOUT') return 'the connection timed out (nothing answered within 10 s)';
    if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'the server accepted the connection but never answered (timed out)';
    if (code === 'ENOTFOUND') return `the name "${host}" does not resolve (not found in DNS)`;
    if (code === 'EAI_AGAIN') return `the name "${host}" could not be resolved (DNS did not answer)`;
    if (code === 'EHOSTUNREACH' || code === 'ENETUNREACH') return 'there is no route to it from this machine';
    if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'the server closed the connection';
    if (TLS_UNKNOWN_CA.has(code)) return `TLS verification failed: its certificate is not signed by the kubeconfig's certificate authority (${code})`;
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return `TLS verification failed: its certificate is not valid for "${host}" (hostname mismatch)`;
    if (code === 'CERT_HAS_EXPIRED') return 'TLS verification failed: its certificate has expired';
    if (code === 'CERT_NOT_YET_VALID') return 'TLS verification failed: its certificate is not valid yet (is this machine\'s clock right?)';
    if (code.startsWith('ERR_SSL_') || code === 'EPROTO' || code.startsWith('ERR_TLS_')) return `the TLS handshake failed (${firstLine(c.message)})`;
    if (c.message === 'bad port') return 'fetch refuses to connect to that port (one browsers block); use the port the API server listens on';
    if (/^Cannot parse content|^Unexpected token|is not valid JSON/.test(c.message)) return 'it did not answer like a Kubernetes API server';
  }
  return undefined;
}

/** The one sentence for a transport failure, or undefined when `e` is something else. */
export function describeTransport(e: unknown, server: string): ApiUnreachable | undefined {
  if (e instanceof ApiException) return undefined;
  // The signal --request-timeout puts on every API call.
  if (causes(e).some((c) => c.name === 'TimeoutError')) return new ApiUnreachable(`the API server ${server} did not answer within --request-timeout; give it longer (e.g. --request-timeout 30s) or leave the flag out.`, e);
  const why = transportCause(e, server);
  return why ? new ApiUnreachable(`cannot reach the API server ${server}: ${why}; check the kubeconfig's server and the network.`, e) : undefined;
}

// client-node's methods are named <verb>[Namespaced]<Kind>[ForAllNamespaces][WithHttpInfo].
const METHOD = /^(create|read|list|patch|replace|deleteCollection|delete|connect[A-Z][a-z]+)(Namespaced)?([A-Z][A-Za-z]*?)(ForAllNamespaces)?(WithHttpInfo)?$/;
const VERB: Record<string, string> = { read: 'get', deleteCollection: 'deletecollection' };

function plural(kind: string): string {
  const k = kind.toLowerCase();
  if (k.endsWith('s')) return k === 'endpoints' ? k : `${k}es`;
  if (k.endsWith('y')) return `${k.slice(0, -1)}ies`;
  return `${k}s`;
}

/** What a client-node method attempts, from its name and its parameter object. */
export function attemptOf(method: string, args: readonly unknown[]): Attempt {
  const m = METHOD.exec(method);
  const param = args[0] && typeof args[0] === 'object' ? args[0] as { namespace?: unknown } : {};
  const namespace = typeof param.namespace === 'string' ? param.namespace : undefined;
  if (!m) return { verb: method, resource: 'the API', namespace };
  return { verb: VERB[m[1]!] ?? m[1]!.toLowerCase(), resource: plural(m[3]!), namespace };
}

/** Rewrites a failed API call's error as one sentence (an ApiException stays one, with its code). */
export function rewrite(e: unknown, a: Attempt, ctx: ApiContext): unknown {
  if (e instanceof KubeApiError || e instanceof UserError) return e;
  if (e instanceof ApiException) return new KubeApiError(e, a, ctx);
  return describeTransport(e, ctx.server) ?? e;
}

/** An API client whose every failed call rejects with a one-sentence error. */
export function wrapApiClient<T extends object>(api: T, ctx: ApiContext): T {
  return new Proxy(api, {
    get(target, prop, receiver) {
      const v: unknown = Reflect.get(target, prop, receiver);
      if (typeof v !== 'function' || typeof prop !== 'string') return v;
      return (...args: unknown[]): unknown => {
        const r: unknown = Reflect.apply(v, target, args);
        if (r instanceof Promise) return r.catch((e: unknown) => { throw rewrite(e, attemptOf(prop, args), ctx); });
        return r;
      };
    },
  });
}
