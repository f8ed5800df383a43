// A meshed Service's shared objects: the route table (ConfigMap), and, owned by it so they go when
// it goes, the router Deployment with its narrowly scoped ServiceAccount, and the real-pods
// ("stuntman") Service that keeps the original selector.
import { AppsV1Api, RbacAuthorizationV1Api, type V1ConfigMap, type V1OwnerReference, type V1Service } from '@kubernetes/client-node';
import {
  HEALTH_PATH, LABEL, MANAGED_BY, ROLE, ROUTER_DRAIN, ROUTER_ENV, ROUTER_LABEL, ROUTER_PORT, ROUTES_KEY, meshNames, type RouteTable,
} from '../../contract/index.ts';
import { escalatedRules } from '../kube/api-errors.ts';
import { UserError } from '../cli/errors.ts';
import { apiStatus, call, explain, type Kube } from '../kube/kube.ts';
import { settleAll, step, throwIfInterrupted } from '../session/steps.ts';

export interface MeshPort {
  /** The original Service's port. */
  port: number;
  /** The container port the real pods serve it on: the router and shadows listen there too. */
  target: number;
  name?: string | undefined;
  protocol: 'http' | 'tcp';
}

const HTTP_HINTS = ['http', 'http2', 'h2c', 'grpc', 'kubernetes.io/h2c', 'kubernetes.io/ws', 'kubernetes.io/wss'];

/** Whether a Service port speaks HTTP: its appProtocol, or a name like http, http-api, grpc-web. */
export function isHttpPort(p: { name?: string; appProtocol?: string }): boolean {
  if (p.appProtocol) return HTTP_HINTS.includes(p.appProtocol.toLowerCase());
  return /^(http|https|h2c|grpc|web)(-|$)/.test(p.name ?? '');
}

function infraLabels(service: string): Record<string, string> {
  return { [LABEL.managedBy]: MANAGED_BY, [LABEL.role]: ROLE.router, [ROUTER_LABEL]: service };
}

export function routerObjects(svc: V1Service, ports: MeshPort[], image: string, table: RouteTable, owner?: V1OwnerReference) {
  const name = svc.metadata!.name!;
  const ns = svc.metadata!.namespace!;
  const n = meshNames(name);
  const labels = infraLabels(name);
  const meta = (objName: string) => ({ name: objName, namespace: ns, labels, ...(owner ? { ownerReferences: [owner] } : {}) });
  const lowPort = ports.some((p) => p.target < 1024);
  const configMap: V1ConfigMap = { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: n.routes, namespace: ns, labels }, data: { [ROUTES_KEY]: JSON.stringify(table) } };
  const stuntman: V1Service = {
    apiVersion: 'v1', kind: 'Service', metadata: meta(n.stuntman),
    spec: {
      selector: svc.spec!.selector!,
      ports: (svc.spec?.ports ?? []).map((p, i) => ({ name: p.name ?? `p${i}`, port: ports.find((m) => m.port === p.port)?.target ?? p.port, targetPort: p.targetPort ?? p.port, protocol: p.protocol ?? 'TCP' })),
    },
  };
  const deployment = {
    apiVersion: 'apps/v1', kind: 'Deployment', metadata: meta(n.router),
    spec: {
      replicas: 1,
      selector: { matchLabels: { [ROUTER_LABEL]: name } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: n.router,
          enableServiceLinks: false,
          terminationGracePeriodSeconds: ROUTER_DRAIN.terminationGracePeriodSeconds,
          securityContext: {
            runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' },
            ...(lowPort ? { sysctls: [{ name: 'net.ipv4.ip_unprivileged_port_start', value: '0' }] } : {}),
          },
          containers: [{
            name: 'router', image, imagePullPolicy: 'IfNotPresent',
            env: [{ name: ROUTER_ENV.namespace, value: ns }, { name: ROUTER_ENV.routesConfigMap, value: n.routes }],
            ports: [
              ...ports.map((p) => ({ containerPort: p.target, ...(p.name ? { name: p.name.slice(0, 15) } : {}) })),
              { name: 'kt-health', containerPort: ROUTER_PORT.health },
            ],
            readinessProbe: { httpGet: { path: HEALTH_PATH.ready, port: ROUTER_PORT.health }, periodSeconds: 1 },
            livenessProbe: { httpGet: { path: HEALTH_PATH.live, port: ROUTER_PORT.health }, periodSeconds: 10 },
            securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            resources: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
          }],
        },
      },
    },
  };
  const serviceAccount = { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(n.router) };
  // The router may read exactly its route table, nothing else.
  const role = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: meta(n.router),
    rules: [{ apiGroups: [''], resources: ['configmaps'], verbs: ['get', 'list', 'watch'], resourceNames: [n.routes] }],
  };
  const roleBinding = {
    apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: meta(n.router),
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: n.router },
    subjects: [{ kind: 'ServiceAccount', name: n.router, namespace: ns }],
  };
  return { configMap, stuntman, deployment, serviceAccount, role, roleBinding };
}

/**
 * Creates the shared objects unless another developer already did. Returns false when they
 * existed (this developer joins), true when this call created them.
 */
export async function ensureRouter(kube: Kube, svc: V1Service, ports: MeshPort[], image: string, table: RouteTable): Promise<boolean> {
  const ns = kube.namespace;
  const objs = routerObjects(svc, ports, image, table);
  let cm: V1ConfigMap;
  try {
    await step(`create the route table configmap/${objs.configMap.metadata!.name}`);
    cm = await kube.core.createNamespacedConfigMap({ namespace: ns, body: objs.configMap });
  } catch (e) {
    if (apiStatus(e) === 409) return false;
    throw explain(e, 'create', 'configmaps', ns, kube.server);
  }
  const owner: V1OwnerReference = { apiVersion: 'v1', kind: 'ConfigMap', name: cm.metadata!.name!, uid: cm.metadata!.uid!, blockOwnerDeletion: false };
  const owned = routerObjects(svc, ports, image, table, owner);
  const rbac = kube.kc.makeApiClient(RbacAuthorizationV1Api);
  const apps = kube.kc.makeApiClient(AppsV1Api);
  // Each create is named on its own, so a refusal names the right that is really missing. What
  // does not depend on another goes at once: the account, the Role and the stuntman Service; then
  // the binding (it names the Role) and the Deployment (its pods need the account to exist, or the
  // ReplicaSet backs off). All are owned by the route table, so its deletion takes whatever exists.
  try {
    await settleAll([
      async () => {
        await step('create the router\'s ServiceAccount, Role and RoleBinding');
        await settleAll([
          () => call(kube, 'create', 'serviceaccounts', () => kube.core.createNamespacedServiceAccount({ namespace: ns, body: owned.serviceAccount })).then(() => undefined),
          () => call(kube, 'create', 'roles (rbac.authorization.k8s.io)', () => rbac.createNamespacedRole({ namespace: ns, body: owned.role }).catch((e: unknown) => {
            const held = escalatedRules(e);
            if (held.length === 0) throw e;
            throw new UserError(`the router's Role would grant ${[...new Set(held.map((r) => `${r.verb} ${r.resource}`))].join(', ')} in namespace "${ns}", which you do not hold yourself (Kubernetes refuses to let anyone grant more than they have); kt needs the Role in 'kubectl kt-connect rbac'.`);
          })).then(() => undefined),
        ]);
      },
      async () => {
        await step(`create service/${owned.stuntman.metadata!.name} for the real pods`);
        await call(kube, 'create', 'services', () => kube.core.createNamespacedService({ namespace: ns, body: owned.stuntman }));
      },
    ]);
    await settleAll([
      async () => { await call(kube, 'create', 'rolebindings (rbac.authorization.k8s.io)', () => rbac.createNamespacedRoleBinding({ namespace: ns, body: owned.roleBinding })); },
      async () => {
        await step(`create the router deployment/${owned.deployment.metadata.name}`);
        await call(kube, 'create', 'deployments (apps)', () => apps.createNamespacedDeployment({ namespace: ns, body: owned.deployment }));
      },
    ]);
  } catch (e) {
    // The route table owns everything created so far: deleting it takes the rest along.
    await kube.core.deleteNamespacedConfigMap({ namespace: ns, name: cm.metadata!.name! }).catch(() => undefined);
    throw e;
  }
  return true;
}

export async function waitRouterReady(kube: Kube, service: string, timeoutMs: number): Promise<void> {
  const apps = kube.kc.makeApiClient(AppsV1Api);
  const end = Date.now() + timeoutMs;
  for (;;) {
    throwIfInterrupted();
    const d = await apps.readNamespacedDeployment({ namespace: kube.namespace, name: meshNames(service).router }).catch(() => undefined);
    if ((d?.status?.readyReplicas ?? 0) > 0) return;
    if (Date.now() > end) throw new Error(`the router for service/${service} was not ready within ${Math.round(timeoutMs / 1000)}s; see 'kubectl describe deployment ${meshNames(service).router}'`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
