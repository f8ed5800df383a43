// Whether this kt may join a mesh. The first developer's router serves every later developer's
// routes, so a developer may meet a router from an older or newer kt. The router reports the
// contract version it speaks on its route-table document (ROUTER_STATUS); by the rule in
// contract/index.ts another MAJOR cannot work together (refused, naming the router image to use),
// a newer MINOR can (warned once).
import { AppsV1Api } from '@kubernetes/client-node';
import { request } from 'node:http';
import type { Socket } from 'node:net';
import { CONTRACT_VERSION, ROUTER_LABEL, ROUTER_PORT, ROUTER_STATUS, meshNames } from '../../contract/index.ts';
import { compatibility, documentVersion, formatContractVersion, type Compatibility, type ContractVersion } from '../../contract/version.ts';
import { UserError } from '../cli/errors.ts';
import type { Logger } from '../cli/log.ts';
import type { Kube } from '../kube/kube.ts';
import { openPortForward } from '../tunnel/port-forward.ts';

/** The contract version a router's status document states (absent: a router from before versioning). */
export function routerContractOf(doc: unknown): ContractVersion {
  const field = typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)[ROUTER_STATUS.versionField] : undefined;
  return documentVersion(field, `the router's "${ROUTER_STATUS.versionField}"`);
}

/**
 * What joining a mesh whose router speaks `peer` means: a refusal (one sentence) for another
 * MAJOR, a warning for a newer MINOR, nothing otherwise.
 */
export function judgeRouter(peer: ContractVersion, service: string, runningImage: string, ownImage: string): { refuse?: string; warn?: string; compatibility: Compatibility } {
  const c = compatibility(peer);
  const theirs = formatContractVersion(peer);
  const router = `deployment/${meshNames(service).router}`;
  if (c === 'newer-major' || c === 'older-major') {
    const way = c === 'newer-major'
      ? `use the kt release that deploys ${runningImage} (or ask its developers to leave first)`
      : `ask the developers meshing it to leave first (the last one out removes the router), or use the kt release that deploys ${runningImage}`;
    return {
      compatibility: c,
      refuse: `service/${service} is meshed by a router that speaks kt contract ${theirs} (${router}, image ${runningImage}), which this kt-mesh cannot join: it speaks contract ${CONTRACT_VERSION} and would deploy ${ownImage}; ${way}.`,
    };
  }
  if (c === 'newer-minor') {
    return {
      compatibility: c,
      warn: `service/${service}'s router speaks kt contract ${theirs}, newer than this kt-mesh's ${CONTRACT_VERSION} (${router} runs ${runningImage}, this kt would deploy ${ownImage}); joining, as the versions are compatible, but consider upgrading kt.`,
    };
  }
  return { compatibility: c };
}

/** The image the router Deployment runs, as its spec says. */
async function runningRouterImage(kube: Kube, service: string): Promise<string> {
  const apps = kube.kc.makeApiClient(AppsV1Api);
  const d = await apps.readNamespacedDeployment({ namespace: kube.namespace, name: meshNames(service).router }).catch(() => undefined);
  return d?.spec?.template?.spec?.containers?.[0]?.image ?? 'unknown (the router Deployment could not be read)';
}

/** One check per kt-mesh run: refuses by throwing UserError, warns at most once. */
export interface RouterVersionCheck {
  /** Judges the version stated by a router's status document (parsed JSON). */
  check(doc: unknown): Promise<void>;
}

export function routerVersionCheck(kube: Kube, service: string, ownImage: string, log: Logger): RouterVersionCheck {
  let warned = false;
  let image: string | undefined;
  return {
    async check(doc) {
      let peer: ContractVersion;
      try {
        peer = routerContractOf(doc);
      } catch (e) {
        throw new UserError(`service/${service}'s router reports no usable contract version: ${(e as Error).message}.`);
      }
      if (compatibility(peer) === 'same' || compatibility(peer) === 'older-minor') return;
      image ??= await runningRouterImage(kube, service);
      const verdict = judgeRouter(peer, service, image, ownImage);
      if (verdict.refuse) throw new UserError(verdict.refuse);
      if (verdict.warn && !warned) {
        warned = true;
        log.warn(verdict.warn);
      }
    },
  };
}

/** GET over an open stream; the body of a 200, else undefined. Bounded by its own timer. */
function getOver(stream: Socket, path: string, timeoutMs: number): Promise<string | undefined> {
  return new Promise((resolve) => {
    const req = request({ host: 'localhost', path, createConnection: () => stream }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => { body += d.toString(); });
      res.on('end', () => { clearTimeout(timer); resolve(res.statusCode === 200 ? body : undefined); });
      res.on('close', () => { clearTimeout(timer); resolve(undefined); });
    });
    const timer = setTimeout(() => req.destroy(), timeoutMs);
    req.on('error', () => { clearTimeout(timer); resolve(undefined); });
    req.end();
  });
}

/**
 * The status documents of the Service's ready router pods, read before this kt creates anything:
 * through a port-forward to each pod's health port (the same right kt's own tunnel uses). A pod
 * that cannot be read is left out (the check runs again through the tunnel once routed).
 */
export async function readRouterStatuses(kube: Kube, service: string, timeoutMs = 5000): Promise<unknown[]> {
  const pods = await kube.core.listNamespacedPod({ namespace: kube.namespace, labelSelector: `${ROUTER_LABEL}=${service}` }).catch(() => undefined);
  const ready = (pods?.items ?? []).filter((p) => p.metadata?.deletionTimestamp === undefined && p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
  const docs = await Promise.all(ready.map(async (p) => {
    let stream: Socket | undefined;
    try {
      stream = await openPortForward(kube.kc, { namespace: kube.namespace, pod: p.metadata!.name!, port: ROUTER_PORT.health }, timeoutMs) as unknown as Socket;
      const body = await getOver(stream, ROUTER_STATUS.path, timeoutMs);
      return body === undefined ? undefined : JSON.parse(body) as unknown;
    } catch {
      return undefined;
    } finally {
      stream?.destroy();
    }
  }));
  return docs.filter((d) => d !== undefined);
}
