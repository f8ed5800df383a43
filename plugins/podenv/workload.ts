// Which pod and container the laptop process stands in for: a live pod of the workload when there
// is one (its fieldRefs, IPs and start time are real), else the Deployment's pod template; the
// container named by --container, else the one whose port the Service targets, else the first.
import type { V1Container, V1Deployment, V1Pod } from '@kubernetes/client-node';
import { LABEL } from '../../contract/index.ts';
import { UserError } from '../cli/errors.ts';
import { apiStatus, call, type Kube } from '../kube/kube.ts';
import { appsApi } from '../kube/recovery-api.ts';

export interface WorkloadSource {
  /** What the user would call it: `service/echo`, `deployment/api`, `pod/api-1`. */
  what: string;
  pods: V1Pod[];
  deployment?: V1Deployment | undefined;
  /** Container ports the Service sends to. */
  targetPorts?: number[];
}

export interface Workload {
  pod: V1Pod;
  /** True when `pod` is a live pod, false when it is made from the Deployment's template. */
  live: boolean;
  container: V1Container;
  what: string;
}

const ready = (p: V1Pod): boolean => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;

export function pickWorkload(src: WorkloadSource, namespace: string, containerName: string | undefined): Workload {
  const candidates = src.pods.filter((p) => p.metadata?.labels?.[LABEL.managedBy] !== 'kt' && !p.metadata?.deletionTimestamp);
  const running = candidates.filter((p) => p.status?.phase === 'Running');
  const live = running.find(ready) ?? running[0];
  let pod: V1Pod | undefined = live;
  if (!pod && src.deployment?.spec?.template) {
    const t = src.deployment.spec.template;
    pod = { metadata: { ...t.metadata, namespace }, spec: t.spec };
  }
  if (!pod?.spec) throw new UserError(`${src.what} has no running pod and no pod template, so there is no environment to bring.`);
  const containers = pod.spec.containers;
  let container: V1Container | undefined;
  if (containerName) {
    container = containers.find((c) => c.name === containerName);
    if (!container) throw new UserError(`container "${containerName}" is not in the pods of ${src.what} (they have ${containers.map((c) => c.name).join(', ')}).`, 2);
  } else {
    container = containers.find((c) => c.ports?.some((p) => src.targetPorts?.includes(p.containerPort))) ?? containers[0];
  }
  return { pod, live: !!live, container: container!, what: src.what };
}

const ENV_FROM_RE = /^(deployment|deploy|deployments|pod|po|pods)\/([a-z0-9]([-a-z0-9.]*[a-z0-9])?)$/;

/** Checks `--env-from` without the cluster: `deployment/NAME` or `pod/NAME`. */
export function parseEnvFrom(text: string): { kind: 'deployment' | 'pod'; name: string } {
  const m = ENV_FROM_RE.exec(text);
  if (!m) throw new UserError(`--env-from must be deployment/NAME or pod/NAME, not "${text}".`, 2);
  return { kind: m[1]!.startsWith('d') ? 'deployment' : 'pod', name: m[2]! };
}

/** The pods (and Deployment) `--env-from` names; one sentence when it does not exist. */
export async function sourceFromFlag(kube: Kube, text: string): Promise<WorkloadSource> {
  const { kind, name } = parseEnvFrom(text);
  const ns = kube.namespace;
  if (kind === 'pod') {
    const pod = await call(kube, 'get', 'pods', () => kube.core.readNamespacedPod({ namespace: ns, name }).catch((e: unknown) => {
      if (apiStatus(e) === 404) throw new UserError(`pod "${name}" does not exist in namespace "${ns}" (--env-from).`);
      throw e;
    }));
    return { what: `pod/${name}`, pods: [pod] };
  }
  const deployment = await call(kube, 'get', 'deployments', () => appsApi(kube).readNamespacedDeployment({ namespace: ns, name }).catch((e: unknown) => {
    if (apiStatus(e) === 404) throw new UserError(`deployment "${name}" does not exist in namespace "${ns}" (--env-from).`);
    throw e;
  }), ns);
  const labels = deployment.spec?.selector?.matchLabels ?? {};
  const selector = Object.entries(labels).map(([k, v]) => `${k}=${v}`).join(',');
  const pods = selector ? (await call(kube, 'list', 'pods', () => kube.core.listNamespacedPod({ namespace: ns, labelSelector: selector }))).items : [];
  return { what: `deployment/${name}`, pods, deployment };
}
