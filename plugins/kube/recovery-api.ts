// The laptop's implementation of the recovery API (contract/recovery.ts), on client-node.
import { AppsV1Api, DiscoveryV1Api } from '@kubernetes/client-node';
import type { RecoveryApi } from '../../contract/recovery.ts';
import { apiStatus, mergePatch, type Kube } from './kube.ts';

const orUndefined = <T>(p: Promise<T>): Promise<T | undefined> =>
  p.catch((e: unknown) => { if (apiStatus(e) === 404) return undefined; throw e; });

export function recoveryApi(kube: Kube): RecoveryApi {
  const apps = kube.kc.makeApiClient(AppsV1Api);
  const discovery = kube.kc.makeApiClient(DiscoveryV1Api);
  return {
    getConfigMap: async (namespace, name) => {
      const c = await orUndefined(kube.core.readNamespacedConfigMap({ namespace, name }));
      return c && { data: c.data ?? {}, resourceVersion: c.metadata!.resourceVersion! };
    },
    replaceConfigMapData: async (namespace, name, data, resourceVersion) => {
      try {
        await kube.core.patchNamespacedConfigMap({ namespace, name, body: { metadata: { resourceVersion }, data } }, mergePatch);
        return true;
      } catch (e) {
        if (apiStatus(e) === 409) return false;
        throw e;
      }
    },
    deleteConfigMap: async (namespace, name) => { await orUndefined(kube.core.deleteNamespacedConfigMap({ namespace, name })); },
    getService: async (namespace, name) => {
      const s = await orUndefined(kube.core.readNamespacedService({ namespace, name }));
      return s && { selector: s.spec?.selector ?? {}, annotations: s.metadata?.annotations ?? {} };
    },
    patchService: async (namespace, name, body) => { await kube.core.patchNamespacedService({ namespace, name, body }, mergePatch); },
    getDeployment: async (namespace, name) => {
      const d = await orUndefined(apps.readNamespacedDeployment({ namespace, name }));
      return d && {
        replicas: d.spec?.replicas ?? 1, annotations: d.metadata?.annotations ?? {},
        readyReplicas: d.status?.readyReplicas ?? 0, observed: (d.status?.observedGeneration ?? 0) >= (d.metadata?.generation ?? 0),
      };
    },
    patchDeployment: async (namespace, name, body) => { await apps.patchNamespacedDeployment({ namespace, name, body }, mergePatch); },
    delete: async (kind, namespace, name) => {
      const del: Promise<unknown> = kind === 'Pod'
        ? kube.core.deleteNamespacedPod({ namespace, name, gracePeriodSeconds: 0 })
        : kind === 'Service' ? kube.core.deleteNamespacedService({ namespace, name }) : kube.core.deleteNamespacedSecret({ namespace, name });
      await orUndefined(del);
    },
    listEndpoints: async (namespace, service) => {
      const slices = await discovery.listNamespacedEndpointSlice({ namespace, labelSelector: `kubernetes.io/service-name=${service}` });
      return slices.items.flatMap((sl) => (sl.endpoints ?? []).flatMap((e) => e.addresses.map((address) => ({
        address, ready: e.conditions?.ready !== false, pod: e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined,
      }))));
    },
    deleteDeploymentForeground: async (namespace, name) => {
      await orUndefined(apps.deleteNamespacedDeployment({ namespace, name, propagationPolicy: 'Foreground' }));
    },
  };
}

export function appsApi(kube: Kube): AppsV1Api {
  return kube.kc.makeApiClient(AppsV1Api);
}
