// The shadow's own small Kubernetes client, for the watchdog: the pod's ServiceAccount token, the
// in-cluster API address, JSON over node:https. Implements the recovery API of the contract.
import { readFile } from 'node:fs/promises';
import { request } from 'node:https';
import type { RecoveryApi } from '../contract/recovery.ts';

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface InClusterOptions {
  baseUrl?: string;
  token?: string;
  ca?: string | Buffer;
}

export interface KubeRequest {
  (method: string, path: string, body?: object, contentType?: string): Promise<{ status: number; body: unknown }>;
}

export async function inClusterRequest(o: InClusterOptions = {}): Promise<KubeRequest> {
  const host = process.env.KUBERNETES_SERVICE_HOST;
  const port = process.env.KUBERNETES_SERVICE_PORT ?? '443';
  const baseUrl = o.baseUrl ?? `https://${host?.includes(':') ? `[${host}]` : host}:${port}`;
  const ca = o.ca ?? await readFile(`${SA_DIR}/ca.crt`).catch(() => undefined);
  const tokenFile = `${SA_DIR}/token`;
  return async (method, path, body, contentType = 'application/json') => {
    // The projected token rotates: read it for every request.
    const token = o.token ?? (await readFile(tokenFile, 'utf8')).trim();
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = request(new URL(path, baseUrl), {
        method,
        ...(ca ? { ca } : {}),
        headers: {
          authorization: `Bearer ${token}`,
          accept: 'application/json',
          ...(data ? { 'content-type': contentType, 'content-length': data.length } : {}),
        },
        timeout: 10_000,
      }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString();
          let parsed: unknown = text;
          try { parsed = JSON.parse(text); } catch { /* not JSON */ }
          resolve({ status: res.statusCode ?? 0, body: parsed });
        });
      });
      req.on('timeout', () => req.destroy(new Error(`${method} ${path}: timed out`)));
      req.on('error', reject);
      req.end(data);
    });
  };
}

function check(r: { status: number; body: unknown }, what: string, allow404 = true): boolean {
  if (r.status === 404 && allow404) return false;
  if (r.status >= 300) {
    const msg = (r.body as { message?: string } | undefined)?.message ?? String(r.body).slice(0, 200);
    throw new Error(`${what}: HTTP ${r.status}: ${msg}`);
  }
  return true;
}

interface K8sObject {
  metadata?: { annotations?: Record<string, string>; generation?: number };
  spec?: { selector?: Record<string, string>; replicas?: number };
  status?: { readyReplicas?: number; observedGeneration?: number };
}

interface EndpointSlice {
  endpoints?: { addresses?: string[]; conditions?: { ready?: boolean }; targetRef?: { kind?: string; name?: string } }[];
}

export function recoveryApiFor(req: KubeRequest): RecoveryApi {
  const svc = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/services/${name}`;
  const dep = (ns: string, name: string): string => `/apis/apps/v1/namespaces/${ns}/deployments/${name}`;
  const merge = 'application/merge-patch+json';
  const cm = (ns: string, name: string): string => `/api/v1/namespaces/${ns}/configmaps/${name}`;
  return {
    getConfigMap: async (ns, name) => {
      const r = await req('GET', cm(ns, name));
      if (!check(r, `get configmap ${name}`)) return undefined;
      const o = r.body as { data?: Record<string, string>; metadata?: { resourceVersion?: string } };
      return { data: o.data ?? {}, resourceVersion: o.metadata?.resourceVersion ?? '' };
    },
    replaceConfigMapData: async (ns, name, data, resourceVersion) => {
      const r = await req('PATCH', cm(ns, name), { metadata: { resourceVersion }, data }, merge);
      if (r.status === 409) return false;
      check(r, `patch configmap ${name}`, false);
      return true;
    },
    deleteConfigMap: async (ns, name) => { check(await req('DELETE', cm(ns, name)), `delete configmap ${name}`); },
    getService: async (ns, name) => {
      const r = await req('GET', svc(ns, name));
      if (!check(r, `get service ${name}`)) return undefined;
      const o = r.body as K8sObject;
      return { selector: o.spec?.selector ?? {}, annotations: o.metadata?.annotations ?? {} };
    },
    patchService: async (ns, name, body) => { check(await req('PATCH', svc(ns, name), body, merge), `patch service ${name}`, false); },
    getDeployment: async (ns, name) => {
      const r = await req('GET', dep(ns, name));
      if (!check(r, `get deployment ${name}`)) return undefined;
      const o = r.body as K8sObject;
      return {
        replicas: o.spec?.replicas ?? 1, annotations: o.metadata?.annotations ?? {},
        readyReplicas: o.status?.readyReplicas ?? 0, observed: (o.status?.observedGeneration ?? 0) >= (o.metadata?.generation ?? 0),
      };
    },
    patchDeployment: async (ns, name, body) => { check(await req('PATCH', dep(ns, name), body, merge), `patch deployment ${name}`, false); },
    delete: async (kind, ns, name) => {
      const plural = kind === 'Pod' ? 'pods' : kind === 'Service' ? 'services' : 'secrets';
      check(await req('DELETE', `/api/v1/namespaces/${ns}/${plural}/${name}`, kind === 'Pod' ? { gracePeriodSeconds: 0 } : undefined), `delete ${kind} ${name}`);
    },
    listEndpoints: async (ns, service) => {
      const selector = encodeURIComponent(`kubernetes.io/service-name=${service}`);
      const r = await req('GET', `/apis/discovery.k8s.io/v1/namespaces/${ns}/endpointslices?labelSelector=${selector}`);
      check(r, `list endpointslices of ${service}`, false);
      const list = r.body as { items?: EndpointSlice[] };
      return (list.items ?? []).flatMap((sl) => (sl.endpoints ?? []).flatMap((e) => (e.addresses ?? []).map((address) => ({
        address, ready: e.conditions?.ready !== false, pod: e.targetRef?.kind === 'Pod' ? e.targetRef.name : undefined,
      }))));
    },
    deleteDeploymentForeground: async (ns, name) => {
      check(await req('DELETE', dep(ns, name), { propagationPolicy: 'Foreground' }), `delete deployment ${name}`);
    },
  };
}
