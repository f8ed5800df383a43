// A thin layer over client-node: the API clients kt uses, the cluster's clock, and API errors
// turned into one sentence that says which verb on which resource failed (see api-errors.ts).
import { ApiException, AuthorizationV1Api, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { describeApiException, describeTransport, KubeApiError, missingPermission } from './api-errors.ts';
import { UserError } from '../cli/errors.ts';

export interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  namespace: string;
  context: string;
  server: string;
  /** The namespace the context names, to tell a mistyped -n from a missing permission. */
  contextNamespace?: string | undefined;
}

export function makeKube(kc: KubeConfig, namespace: string, context: string, server: string, contextNamespace?: string): Kube {
  return { kc, core: kc.makeApiClient(CoreV1Api), namespace, context, server, contextNamespace };
}

/** Options for a JSON merge patch (client-node defaults to JSON patch). */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function apiStatus(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

/**
 * Rewrites an API failure as a UserError naming what was attempted: a 403 says which verb on which
 * resource is missing (the rule a user must ask for), a transport failure names the server and why.
 */
export function explain(e: unknown, verb: string, resource: string, namespace: string | undefined, server: string, contextNamespace?: string): Error {
  if (e instanceof UserError) return e;
  if (e instanceof ApiException) {
    const ctx = e instanceof KubeApiError ? e.context : { server, contextNamespace };
    return new UserError(describeApiException(e, { verb, resource, namespace }, ctx));
  }
  return describeTransport(e, server) ?? (e instanceof Error ? e : new Error(String(e)));
}

/**
 * Whether the user may do something, by a SelfSubjectAccessReview (which every authenticated user
 * may create); undefined when the cluster does not say.
 */
export function canI(kube: Kube, verb: string, resource: string, namespace: string | undefined, group = ''): Promise<boolean | undefined> {
  // The same question within a few seconds gets the same answer: a start asks its rights early, at
  // once, and the steps that need them find the answers there (see prefetchRights).
  const key = `${verb} ${group}/${resource} ${namespace ?? ''}`;
  const cache = answers.get(kube) ?? new Map<string, { at: number; answer: Promise<boolean | undefined> }>();
  answers.set(kube, cache);
  const hit = cache.get(key);
  if (hit && Date.now() - hit.at < ANSWER_TTL_MS) return hit.answer;
  // "pods/portforward" is the resource pods with the subresource portforward: a rule on pods/* or
  // */portforward matches only when the review names them apart.
  const [name = resource, subresource] = resource.split('/', 2);
  const answer = kube.kc.makeApiClient(AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { spec: { resourceAttributes: { verb, resource: name, group, ...(subresource ? { subresource } : {}), ...(namespace ? { namespace } : {}) } } },
  }).then((r) => r.status?.allowed === true, () => undefined);
  cache.set(key, { at: Date.now(), answer });
  return answer;
}

const ANSWER_TTL_MS = 10_000;
const answers = new WeakMap<Kube, Map<string, { at: number; answer: Promise<boolean | undefined> }>>();

/** Asks the rights now, all at once, so the checks that come later find the answers waiting. */
export function prefetchRights(kube: Kube, namespace: string, rights: readonly { verb: string; resource: string; group?: string }[]): void {
  for (const r of rights) void canI(kube, r.verb, r.resource, namespace, r.group ?? '');
}

/** Of the rights asked for, those the user does not hold in the namespace ("patch rolebindings"). */
export async function missingRights(kube: Kube, namespace: string, wanted: readonly { verb: string; resource: string; group?: string }[]): Promise<string[]> {
  const answers = await Promise.all(wanted.map((w) => canI(kube, w.verb, w.resource, namespace, w.group ?? '')));
  return wanted.filter((_, i) => answers[i] === false).map((w) => `${w.verb} ${w.resource}`);
}

/**
 * For a user who may not read namespaces: checks, before anything is created, that they may create
 * pods in the session's namespace, so a mistyped -n fails with the right sentence and nothing to
 * undo. Every plugin that deploys a shadow needs that right.
 */
export async function checkMayCreatePods(kube: Kube): Promise<void> {
  if (await canI(kube, 'create', 'pods', kube.namespace) !== false) return;
  const ns = kube.namespace;
  if (kube.contextNamespace && kube.contextNamespace !== ns) {
    throw new UserError(`you may not create pods in namespace "${ns}": it does not exist or no Role of yours covers it; is -n right? (the context's namespace is "${kube.contextNamespace}").`);
  }
  throw new UserError(missingPermission({ verb: 'create', resource: 'pods', apiGroup: '', namespace: ns }));
}

/** Runs one API call, rewriting failures with explain(). */
export async function call<T>(kube: Kube, verb: string, resource: string, fn: () => Promise<T>, namespace = kube.namespace): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw explain(e, verb, resource, namespace, kube.server, kube.contextNamespace);
  }
}

/**
 * The cluster's clock: the Date header of a cheap API response. Staleness is always judged by this,
 * never by the laptop's clock, which may be skewed.
 */
export async function clusterNow(kube: Kube): Promise<number> {
  // Listing one pod needs only the namespace-scoped rights kt needs anyway.
  const info = await call(kube, 'list', 'pods', () => kube.core.listNamespacedPodWithHttpInfo({ namespace: kube.namespace, limit: 1 }));
  const date = info.headers['date'];
  const t = date ? Date.parse(date) : NaN;
  return Number.isNaN(t) ? Date.now() : t;
}
