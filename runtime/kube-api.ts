// The one in-cluster Kubernetes client: the pod's ServiceAccount token, the in-cluster API address,
// JSON over node:https. The shadow's watchdog uses it for the contract's recovery API, the router
// to watch its route table.
import { readFile } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { hostPort } from './host-port.ts';
import type { RecoveryApi } from '../contract/recovery.ts';

export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** The pod has no in-cluster API access (no service host in its environment, no ServiceAccount CA). */
export class InClusterConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InClusterConfigError';
  }
}

/** Where the API server is from inside a pod, and its credentials. */
export interface InClusterApi {
  /** https://HOST:PORT in a pod; http:// is accepted (tests). */
  apiServer: string;
  /** The bearer token, read again for every request (projected tokens are rotated). Empty: none. */
  token: () => Promise<string>;
  /** CA bundle for an https API server. */
  ca?: Buffer | string | undefined;
}

type Env = Readonly<Record<string, string | undefined>>;

/** The in-cluster API server and credentials (KUBERNETES_SERVICE_HOST/_PORT and the ServiceAccount files). */
export async function inClusterApi(env: Env = process.env, dir = SERVICE_ACCOUNT_DIR): Promise<InClusterApi> {
  const host = env.KUBERNETES_SERVICE_HOST?.trim();
  const port = env.KUBERNETES_SERVICE_PORT?.trim() || '443';
  if (!host) throw new InClusterConfigError('KUBERNETES_SERVICE_HOST is not set: the in-cluster API is reachable only from inside a pod');
  let ca: Buffer;
  try {
    ca = await readFile(`${dir}/ca.crt`);
  } catch (err) {
    throw new InClusterConfigError(`cannot read the ServiceAccount CA ${dir}/ca.crt: ${err instanceof Error ? err.message : String(err)}`);
  }
  return {
    apiServer: `https://${hostPort(host, Number(port))}`,
    token: async () => (await readFile(`${dir}/token`, 'utf8')).trim(),
    ca,
  };
}

/** Sends one request to the API server: a GET to read or watch, or a write with a JSON body. */
export function sendToApi(api: InClusterApi, token: string, method: string, path: string, o: { body?: Buffer; contentType?: string; timeoutMs: number }): ClientRequest {
  const url = new URL(path, api.apiServer);
  const headers: Record<string, string | number> = { accept: 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  if (o.body) Object.assign(headers, { 'content-type': o.contentType ?? 'application/json', 'content-length': o.body.length });
  const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
  return send(url, { method, headers, ...(api.ca ? { ca: api.ca } : {}), timeout: o.timeoutMs });
}

export interface KubeRequest {
  (method: string, path: string, body?: object, contentType?: string): Promise<{ status: number; body: unknown }>;
}

/** JSON requests to the in-cluster API (the environment's, unless `api` is given). */
export async function inClusterRequest(given?: InClusterApi): Promise<KubeRequest> {
  const api = given ?? await inClusterApi();
  return async (method, path, body, contentType = 'application/json') => {
    const token = await api.token();
    const data = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    return new Promise((resolve, reject) => {
      const req = sendToApi(api, token, method, path, { ...(data ? { body: data } : {}), contentType, timeoutMs: 10_000 });
      req.once('response', (res: IncomingMessage) => {
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
