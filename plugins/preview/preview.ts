// kubectl kt-preview: a local process published as a new Service of the cluster, selecting the
// session's shadow pod, whose ports lead back to the laptop. Removed on exit, by the shadow's
// watchdog when the laptop disappears, or by kt-clean.
import type { V1Service } from '@kubernetes/client-node';
import { ANNOTATION, LABEL, ROLE, SELECT_LABEL, type RecoveryPlan } from '../../contract/index.ts';
import type { Options } from '../cli/cli.ts';
import type { PREVIEW_FLAGS } from './flags.ts';
import { UserError } from '../cli/errors.ts';
import { parseExpose } from '../inbound/expose.ts';
import { forwardPorts, type PortPair } from '../inbound/forward.ts';
import { apiStatus, call, type Kube } from '../kube/kube.ts';
import { createLogger } from '../cli/log.ts';
import { lockIsLive } from '../session/service-lock.ts';
import { HEALTH_SERVICE_PORT, waitServiceAnswers } from '../inbound/service-check.ts';
import { annotations, labels, type Session } from '../session/session.ts';
import { checkNamespace, kubeFromFlags, startShadowSession } from '../session/shadow-session.ts';
import { step } from '../session/steps.ts';
import { checkPodEnvFlags, preparePodEnv, runCommand } from '../podenv/podenv.ts';

const NAME_RE = /^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** Refuses a name taken by anything but a dead kt preview; returns true when one must be replaced. */
async function checkName(kube: Kube, name: string): Promise<boolean> {
  let existing: V1Service;
  try {
    existing = await kube.core.readNamespacedService({ namespace: kube.namespace, name });
  } catch (e) {
    if (apiStatus(e) === 404) return false;
    throw e;
  }
  const session = existing.metadata?.labels?.[LABEL.session];
  const isPreview = existing.metadata?.labels?.[LABEL.role] === ROLE.service && existing.metadata?.annotations?.[ANNOTATION.kind] === 'preview';
  if (!isPreview || !session) throw new UserError(`service "${name}" already exists in namespace "${kube.namespace}" and is not a kt preview; pick another name.`);
  if (await lockIsLive(kube, { session, user: '', kind: 'exchange', since: 0 })) {
    throw new UserError(`service "${name}" is already a live kt preview of ${existing.metadata?.annotations?.[ANNOTATION.user] ?? 'someone'} (session ${session}); pick another name.`);
  }
  return true;
}

export function previewService(name: string, s: Session, type: string, ports: PortPair[]): V1Service {
  return {
    apiVersion: 'v1',
    kind: 'Service',
    metadata: { name, namespace: s.namespace, labels: labels(s, ROLE.service), annotations: annotations(s) },
    spec: {
      type,
      selector: { [SELECT_LABEL.preview]: s.id },
      ports: [
        ...ports.map((p) => ({ name: `port-${p.remote}`, port: p.remote, targetPort: p.remote, protocol: 'TCP' })),
        // The shadow's health port: how kt tells the Service works before saying it does.
        ...(ports.some((p) => p.remote === HEALTH_SERVICE_PORT.port) ? [] : [HEALTH_SERVICE_PORT]),
      ],
    },
  };
}


export async function runPreview(p: Options<typeof PREVIEW_FLAGS>): Promise<number> {
  const name = p.args[0];
  if (!name || p.args.length > 1) throw new UserError('name the Service to create: kubectl kt-preview NAME --expose LOCAL[:REMOTE].', 2);
  if (!NAME_RE.test(name)) throw new UserError(`"${name}" is not a valid Service name (lower case letters, digits and '-', starting with a letter, at most 63).`, 2);
  const type = p.type;
  const ports: PortPair[] = parseExpose(p.expose).map((e) => {
    if (e.remote !== undefined && !/^\d+$/.test(e.remote)) throw new UserError(`--expose: a new Service has no named ports yet; give REMOTE as a number, not "${e.remote}".`, 2);
    return { local: e.local, remote: e.remote === undefined ? e.local : Number(e.remote) };
  });
  const recoverAfterMs = p.recoverAfter;
  const envReq = checkPodEnvFlags(p, true);
  const log = createLogger({ debug: p.debug });
  const kube = kubeFromFlags(p);
  await checkNamespace(kube);
  const replace = await checkName(kube, name);
  const podEnv = await preparePodEnv(kube, log, envReq);

  const planFor = (session: string): RecoveryPlan => ({ session, namespace: kube.namespace, steps: [{ op: 'delete', kind: 'Service', name }] });
  const s = await startShadowSession(p, {
    kind: 'preview',
    kube,
    rights: [{ verb: 'create', resource: 'services' }, { verb: 'delete', resource: 'services' }],
    customize: (session) => ({
      extraLabels: { [SELECT_LABEL.preview]: session.id },
      extraAnnotations: { [ANNOTATION.target]: `service/${name}` },
      listenPorts: ports.map((x) => x.remote),
      selfHealing: { plan: planFor(session.id), recoverAfterMs },
    }),
  });
  const { session, tunnel, life } = s;
  await podEnv?.materialise(s);
  await forwardPorts(tunnel, ports, log);
  if (replace) {
    await step(`delete service/${name}, left by a dead preview`);
    log.warn(`service/${name} was left by a preview session that is gone; replacing it`);
    await kube.core.deleteNamespacedService({ namespace: kube.namespace, name }).catch(() => undefined);
  }
  life.defer(`delete service/${name}`, async () => {
    await kube.core.deleteNamespacedService({ namespace: kube.namespace, name }).catch((e: unknown) => { if (apiStatus(e) !== 404) throw e; });
  });
  await step(`create service/${name}`);
  const svc = await call(kube, 'create', 'services', () => kube.core.createNamespacedService({ namespace: kube.namespace, body: previewService(name, session, type, ports) }));

  if (!await waitServiceAnswers(tunnel, `${name}.${kube.namespace}.svc.${p.clusterDomain}`)) {
    log.warn(`service/${name} does not answer yet; callers may be refused for a moment`);
  }
  s.record({ target: `service/${name}`, ports });
  s.log.info(`kt-preview: service/${name} (${type}, ${svc.spec?.clusterIP ?? ''}) in namespace "${kube.namespace}" now serves this laptop (session ${session.id}).`);
  for (const x of ports) s.log.info(`  ${name}.${kube.namespace}:${x.remote} -> localhost:${x.local}`);
  s.log.info('Press Ctrl-C to remove it.');
  if (p.rest.length > 0) return runCommand(s, p.rest, podEnv?.env ?? {});
  return s.runUntilSignal(`removing service/${name}`, `kt-preview: service/${name} removed; nothing is left in the cluster.`);
}
