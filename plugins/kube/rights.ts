// The rights a plugin needs, asked of the API server (SelfSubjectAccessReview) before anything is
// created: a user whose Role lacks one hears which rule is missing, and nothing needs undoing.
// When the cluster does not answer such reviews, the calls themselves say it later.
import { missingPermission } from './api-errors.ts';
import { UserError } from '../cli/errors.ts';
import { canI, type Kube } from './kube.ts';

export interface Right {
  verb: string;
  resource: string;
  /** The API group: '' for the core group. */
  group?: string;
}

/** What every session needs for its shadow pod, the Secret holding its keys and the tunnel into it. */
export const SHADOW_RIGHTS: readonly Right[] = [
  { verb: 'create', resource: 'pods' }, { verb: 'get', resource: 'pods' }, { verb: 'delete', resource: 'pods' },
  // (patch on secrets too, in the documented Role, to make the Secret owned by its pod; a Role
  // without it still works: see createShadow.)
  { verb: 'create', resource: 'secrets' },
  // The port-forward is a WebSocket, an HTTP GET (portForwardTo names the same right when refused);
  // Kubernetes 1.35 and later also ask for create on that upgrade (as for SPDY's POST), so a Role
  // without it would work here and fail after the cluster's next upgrade: both are checked.
  { verb: 'get', resource: 'pods/portforward' }, { verb: 'create', resource: 'pods/portforward' },
];

export async function requireRights(kube: Kube, rights: readonly Right[]): Promise<void> {
  const answers = await Promise.all(rights.map((r) => canI(kube, r.verb, r.resource, kube.namespace, r.group ?? '')));
  const i = answers.indexOf(false);
  if (i < 0) return;
  const r = rights[i]!;
  throw new UserError(missingPermission(
    { verb: r.verb, resource: r.resource, apiGroup: r.group ?? '', namespace: kube.namespace },
    { server: kube.server, contextNamespace: kube.contextNamespace },
  ));
}
