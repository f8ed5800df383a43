// A thin layer over client-node: the API clients kt uses, the cluster's clock, and API errors
// turned into one sentence that says which verb on which resource failed.
import { ApiException, CoreV1Api, PatchStrategy, setHeaderOptions, type KubeConfig } from '@kubernetes/client-node';
import { UserError } from './errors.ts';

export interface Kube {
  kc: KubeConfig;
  core: CoreV1Api;
  namespace: string;
  context: string;
  server: string;
}

export function makeKube(kc: KubeConfig, namespace: string, context: string, server: string): Kube {
  return { kc, core: kc.makeApiClient(CoreV1Api), namespace, context, server };
}

/** Options for a JSON merge patch (client-node defaults to JSON patch). */
export const mergePatch = setHeaderOptions('Content-Type', PatchStrategy.MergePatch);

export function apiStatus(e: unknown): number | undefined {
  return e instanceof ApiException ? e.code : undefined;
}

function apiMessage(e: ApiException<unknown>): string {
  const body = e.body;
  if (typeof body === 'string') {
    try {
      const parsed = JSON.parse(body) as { message?: string };
      if (parsed.message) return parsed.message;
    } catch { /* not JSON */ }
    return body.slice(0, 200);
  }
  if (body && typeof body === 'object' && 'message' in body) return String((body as { message: unknown }).message);
  return e.message;
}

/**
 * Rewrites an API failure as a UserError naming what was attempted: a 403 says which verb on which
 * resource is missing (the RBAC a user must ask for), a connection failure names the server.
 */
export function explain(e: unknown, verb: string, resource: string, namespace: string | undefined, server: string): Error {
  if (e instanceof UserError) return e;
  const where = namespace ? ` in namespace "${namespace}"` : '';
  if (e instanceof ApiException) {
    if (e.code === 401) return new UserError(`the API server ${server} rejected the credentials (401 Unauthorized); check the kubeconfig's user.`);
    if (e.code === 403) return new UserError(`missing permission: cannot ${verb} ${resource}${where} (403 Forbidden); kt needs the RBAC in the README's "Permissions" section.`);
    if (e.code === 404 && resource === 'namespaces') return new UserError(`namespace "${namespace}" does not exist.`);
    return new UserError(`could not ${verb} ${resource}${where}: ${apiMessage(e)} (HTTP ${e.code}).`);
  }
  const err = e as NodeJS.ErrnoException;
  const code = err?.code ?? (err?.cause as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ECONNREFUSED' || code === 'EHOSTUNREACH' || code === 'ENETUNREACH' || code === 'ETIMEDOUT' || code === 'ENOTFOUND') {
    return new UserError(`cannot reach the API server ${server} (${code}); check the kubeconfig and the network.`);
  }
  return err instanceof Error ? err : new Error(String(e));
}

/** Runs one API call, rewriting failures with explain(). */
export async function call<T>(kube: Kube, verb: string, resource: string, fn: () => Promise<T>, namespace = kube.namespace): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw explain(e, verb, resource, namespace, kube.server);
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
