// Self-healing, the laptop's half: a ServiceAccount, Role and RoleBinding for one shadow pod, which
// may do exactly what the session's recovery plan needs and nothing else (each rule names its
// objects), so the shadow's watchdog can undo the session when the laptop disappears. The objects
// are owned by the pod and go with it. A user who may not create RBAC gets a warning and no
// self-healing: then kt-clean is the way back.
import { RbacAuthorizationV1Api, type V1PolicyRule } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { meshNames, type RecoveryPlan } from '../../contract/index.ts';
import { escalatedRules, rbacRefusal } from '../kube/api-errors.ts';
import { apiStatus, mergePatch, missingRights, type Kube } from '../kube/kube.ts';
import type { Logger } from '../cli/log.ts';
import { settleAll, step } from './steps.ts';
import { ownedByPod } from './session.ts';
import { UserError } from '../cli/errors.ts';

export interface SelfHealing {
  plan: RecoveryPlan;
  recoverAfterMs: number;
}

export interface ArmedRbac {
  serviceAccount: string;
  /**
   * Binds the Role to the account. Made beside the pod, which needs the account to exist but not
   * to be bound yet (the watchdog acts only after recover-after).
   */
  bind(): Promise<void>;
  /** Makes the RBAC objects owned by the pod. */
  adopt(pod: { name: string; uid: string }): Promise<void>;
  remove(): Promise<void>;
}

export function rulesFor(plan: RecoveryPlan, podName: string): V1PolicyRule[] {
  const services = new Set<string>();
  const deletableServices = new Set<string>();
  const deployments = new Set<string>();
  const configMaps = new Set<string>();
  const deletableConfigMaps = new Set<string>();
  const routers = new Set<string>();
  let readsEndpoints = false;
  for (const s of plan.steps) {
    if (s.op === 'remove-route') configMaps.add(s.configMap);
    if (s.op === 'unmesh-if-idle') { services.add(s.service); configMaps.add(s.configMap); deletableConfigMaps.add(s.configMap); routers.add(meshNames(s.service).router); }
    if (s.op === 'restore-selector') services.add(s.service);
    if (s.op === 'restore-replicas') { deployments.add(s.deployment); if (s.service) readsEndpoints = true; }
    if (s.op === 'delete' && s.kind === 'Service') deletableServices.add(s.name);
  }
  const rules: V1PolicyRule[] = [{ apiGroups: [''], resources: ['pods'], verbs: ['delete'], resourceNames: [podName] }];
  if (services.size) rules.push({ apiGroups: [''], resources: ['services'], verbs: ['get', 'patch'], resourceNames: [...services] });
  if (deletableServices.size) rules.push({ apiGroups: [''], resources: ['services'], verbs: ['delete'], resourceNames: [...deletableServices] });
  if (configMaps.size) rules.push({ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'patch'], resourceNames: [...configMaps] });
  if (deletableConfigMaps.size) rules.push({ apiGroups: [''], resources: ['configmaps'], verbs: ['delete'], resourceNames: [...deletableConfigMaps] });
  if (deployments.size) rules.push({ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'patch'], resourceNames: [...deployments] });
  // The last developer out, and scale mode's restore, wait until the Service's endpoints moved
  // (slices have generated names, so listing cannot be narrowed to them).
  if (routers.size || readsEndpoints) rules.push({ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] });
  if (routers.size) {
    // Then until the router drained and is gone.
    rules.push({ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'delete'], resourceNames: [...routers] });
  }
  return rules;
}

let warned = false;

function warnOff(log: Logger, why: string): void {
  if (!warned) log.warn(`self-healing is off: ${why}, so if this laptop disappears the cluster stays changed until someone runs kubectl kt-clean`);
  warned = true;
}

/** What each shadow's own account needs its user to be allowed: create it, adopt it (patch), remove it. */
export const RBAC_OBJECT_RIGHTS = ['create', 'patch', 'delete'].flatMap((verb) => [
  { verb, resource: 'serviceaccounts' },
  { verb, resource: 'roles', group: 'rbac.authorization.k8s.io' },
  { verb, resource: 'rolebindings', group: 'rbac.authorization.k8s.io' },
]);

/** The right really refused: a verb on a resource, or rules the Role would grant that the user lacks. */
function refusedHere(e: unknown, ns: string): string {
  const held = escalatedRules(e);
  if (held.length > 0) {
    const list = [...new Set(held.map((r) => `${r.verb} ${r.resource}`))].join(', ');
    return `the shadow's Role would grant ${list} in namespace "${ns}", which you do not hold yourself (Kubernetes refuses to let anyone grant more than they have)`;
  }
  const r = rbacRefusal(e);
  return r ? `you may not ${r.verb} ${r.resource} in namespace "${r.namespace ?? ns}"` : `the API server refused to create the shadow's ServiceAccount, Role or RoleBinding (${(e as Error).message})`;
}

/**
 * Creates the account and Role for one pod incarnation (bind() adds the RoleBinding); undefined
 * when the user may not create them.
 */
export async function armRbac(kube: Kube, podName: string, labels: Record<string, string>, plan: RecoveryPlan, log: Logger): Promise<ArmedRbac | undefined> {
  const rbac = kube.kc.makeApiClient(RbacAuthorizationV1Api);
  const ns = plan.namespace;
  const name = `${podName}-${randomBytes(2).toString('hex')}`;
  const metadata = { name, namespace: ns, labels };
  const created: (() => Promise<unknown>)[] = [];
  const remove = async (): Promise<void> => {
    for (const del of created.reverse()) await del().catch(() => undefined);
  };
  // Asked first, so a user who may create the objects but not patch or delete them (adopt, remove)
  // is told which right is missing instead of failing half-way.
  const missing = await missingRights(kube, ns, RBAC_OBJECT_RIGHTS);
  if (missing.length > 0) {
    warnOff(log, `you may not ${missing.join(', ')} in namespace "${ns}"`);
    return undefined;
  }
  try {
    // The account and the Role do not depend on each other: created at once, and whatever of
    // them exists is removed if either fails.
    await settleAll([
      async () => {
        await step(`create the self-healing ServiceAccount ${name}`);
        await kube.core.createNamespacedServiceAccount({ namespace: ns, body: { metadata, automountServiceAccountToken: true } });
        created.push(() => kube.core.deleteNamespacedServiceAccount({ name, namespace: ns }));
      },
      async () => {
        await step(`create the self-healing Role ${name}`);
        await rbac.createNamespacedRole({ namespace: ns, body: { metadata, rules: rulesFor(plan, podName) } });
        created.push(() => rbac.deleteNamespacedRole({ name, namespace: ns }));
      },
    ]);
  } catch (e) {
    await remove();
    if (apiStatus(e) === 403) {
      warnOff(log, refusedHere(e, ns));
      return undefined;
    }
    throw e;
  }
  return {
    serviceAccount: name,
    remove,
    bind: async () => {
      // After the Role: the API server checks a binding against the rules of the Role it names.
      // Creating that Role proved the user holds its rules, so a refusal here is unexpected, and
      // the start fails (the pod already carries the account) rather than going on half-armed.
      await step(`create the self-healing RoleBinding ${name}`);
      try {
        await rbac.createNamespacedRoleBinding({
          namespace: ns,
          body: { metadata, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name, namespace: ns }] },
        });
      } catch (e) {
        if (apiStatus(e) === 403) throw new UserError(`cannot arm self-healing: ${refusedHere(e, ns)}.`);
        throw e;
      }
      created.push(() => rbac.deleteNamespacedRoleBinding({ name, namespace: ns }));
    },
    adopt: async ({ name: owner, uid }) => {
      const body = ownedByPod({ name: owner, uid });
      await Promise.all([
        kube.core.patchNamespacedServiceAccount({ name, namespace: ns, body }, mergePatch),
        rbac.patchNamespacedRole({ name, namespace: ns, body }, mergePatch),
        rbac.patchNamespacedRoleBinding({ name, namespace: ns, body }, mergePatch),
      ]);
    },
  };
}
