// The laptop process runs like the pod: --env-file writes the container's environment, --mount
// puts its ConfigMap, Secret, projected and downwardAPI volumes under a directory (kept in step
// with the cluster), and `-- COMMAND` runs a program with that environment. Each plugin calls
// checkPodEnvFlags first (flags only), preparePodEnv before it creates anything (reads exactly the
// objects the container references), then materialise once its session exists, and runCommand.
import { spawn } from 'node:child_process';
import { closeSync, constants as fsConstants, fchmodSync, fsyncSync, lstatSync, openSync, readdirSync, statSync, writeSync } from 'node:fs';
import { constants } from 'node:os';
import { dirname, resolve } from 'node:path';
import type { V1ConfigMap, V1Node, V1Secret, V1Service } from '@kubernetes/client-node';
import type { Values } from '../cli/cli.ts';
import type { ENV_FROM_FLAGS, PODENV_FLAGS } from './flags.ts';
import { UserError } from '../cli/errors.ts';
import type { Logger } from '../cli/log.ts';
import { addressInCidr } from '../connect/transparent/cidr.ts';
import { serviceCidrs } from '../connect/transparent/cluster-ranges.ts';
import { apiStatus, call, explain, type Kube } from '../kube/kube.ts';
import type { ShadowSession } from '../session/shadow-session.ts';
import { step } from '../session/steps.ts';
import { removeDeadSessionsFiles, removeWritten, type WrittenFiles } from './cleanup.ts';
import { buildEnv } from './env.ts';
import { formatEnv, type EnvFormat } from './env-file.ts';
import { writePlan } from './mount-writer.ts';
import { referencedObjects, type Refs } from './refs.ts';
import { planMounts, type MountPlan } from './volumes.ts';
import { watchObjects, type Objects } from './watch.ts';
import { parseEnvFrom, pickWorkload, sourceFromFlag, type Workload, type WorkloadSource } from './workload.ts';

export { ENV_FROM_FLAGS, PODENV_FLAGS } from './flags.ts';

export interface PodEnvRequest {
  envFile?: string | undefined;
  format: EnvFormat;
  keepEnvFile: boolean;
  mountDir?: string | undefined;
  mountDirExists: boolean;
  container?: string | undefined;
  optional: boolean;
  /** `-- COMMAND`: the environment is needed even without --env-file. */
  command: boolean;
  envFrom?: string | undefined;
}

function isDir(p: string): boolean | undefined {
  try { return statSync(p).isDirectory(); } catch { return undefined; }
}

function modeOf(p: string): number | undefined {
  try { return statSync(p).mode & 0o7777; } catch { return undefined; }
}

function isSymlink(p: string): boolean {
  try { return lstatSync(p).isSymbolicLink(); } catch { return false; }
}

/**
 * Checks the flags without the cluster (one sentence, exit 2); undefined when nothing is asked.
 * `needsEnvFrom`: kt-preview and kt-connect take the workload from --env-from only.
 */
export function checkPodEnvFlags(o: Values<typeof PODENV_FLAGS> & Partial<Values<typeof ENV_FROM_FLAGS>> & { readonly rest: readonly string[] }, needsEnvFrom: boolean): PodEnvRequest | undefined {
  const envFileArg = o.envFile;
  const mountArg = o.mount;
  const envFrom = o.envFrom;
  if (envFrom !== undefined) parseEnvFrom(envFrom);
  if (o.keepEnvFile && !envFileArg) throw new UserError('--keep-env-file needs --env-file.', 2);
  const command = o.rest.length > 0 && (!needsEnvFrom || envFrom !== undefined);
  if (!envFileArg && !mountArg && !command) {
    const alone = o.container !== undefined ? '--container' : envFrom !== undefined ? '--env-from' : undefined;
    if (alone) throw new UserError(`${alone} picks whose environment --env-file, --mount or -- COMMAND bring; give one of them.`, 2);
    return undefined;
  }
  if (needsEnvFrom && !envFrom) throw new UserError(`--${envFileArg ? 'env-file' : 'mount'} needs --env-from deployment/NAME or pod/NAME: the workload whose environment to bring.`, 2);
  let envFile: string | undefined;
  if (envFileArg) {
    envFile = resolve(envFileArg);
    if (isDir(dirname(envFile)) !== true) throw new UserError(`--env-file ${envFileArg}: the directory ${dirname(envFile)} does not exist.`, 2);
    if (isDir(envFile)) throw new UserError(`--env-file ${envFileArg} is a directory; name a file.`, 2);
    if (isSymlink(envFile)) throw new UserError(`--env-file ${envFileArg} is a symbolic link; kt writes the environment only to a regular file.`, 2);
  }
  let mountDir: string | undefined;
  let mountDirExists = false;
  if (mountArg) {
    mountDir = resolve(mountArg);
    const d = isDir(mountDir);
    if (d === false) throw new UserError(`--mount ${mountArg} is a file, not a directory.`, 2);
    if (d) {
      if (readdirSync(mountDir).length > 0) throw new UserError(`--mount ${mountArg} is not empty; kt removes what it puts there on exit, so it needs an empty or new directory.`, 2);
      mountDirExists = true;
    } else if (isDir(dirname(mountDir)) !== true) {
      throw new UserError(`--mount ${mountArg}: the directory ${dirname(mountDir)} does not exist.`, 2);
    }
    if (envFile && (envFile === mountDir || envFile.startsWith(`${mountDir}/`))) throw new UserError('--env-file cannot be inside the --mount directory.', 2);
  }
  return {
    envFile, format: o.envFormat, keepEnvFile: o.keepEnvFile, mountDir, mountDirExists,
    container: o.container, optional: o.envOptional, command, envFrom,
  };
}

export interface PodEnv {
  /** The environment for `-- COMMAND` (with KT_MOUNT when --mount is given). */
  env: Record<string, string>;
  /** Writes the files (each a start-up step, its undo registered first) and starts the watch. */
  materialise(s: ShadowSession): Promise<void>;
}

async function readObjects(kube: Kube, refs: Refs): Promise<{ objects: Objects; refused: string[] }> {
  const objects: Objects = { configMaps: new Map(), secrets: new Map() };
  const refused: string[] = [];
  const ns = kube.namespace;
  const read = async <T extends V1ConfigMap | V1Secret>(kind: 'configmap' | 'secret', name: string, get: () => Promise<T>, into: Map<string, T>): Promise<void> => {
    try {
      into.set(name, await get());
    } catch (e) {
      const code = apiStatus(e);
      if (code === 404) return;
      if (code === 403) { refused.push(`${kind}/${name}`); return; }
      throw explain(e, 'get', `${kind}s`, ns, kube.server, kube.contextNamespace);
    }
  };
  await Promise.all([
    ...refs.configMaps.map((name) => read('configmap', name, () => kube.core.readNamespacedConfigMap({ namespace: ns, name }), objects.configMaps)),
    ...refs.secrets.map((name) => read('secret', name, () => kube.core.readNamespacedSecret({ namespace: ns, name }), objects.secrets)),
  ]);
  return { objects, refused };
}

/**
 * `kubernetes` of `default` (in every container's environment). A user without rights there gets
 * it from the service range: the API server gives its Service the range's first address, port 443.
 */
async function masterService(kube: Kube, log: Logger): Promise<V1Service | undefined> {
  try {
    return await kube.core.readNamespacedService({ namespace: 'default', name: 'kubernetes' });
  } catch (e) {
    log.debug(`cannot read service/kubernetes in namespace "default" (${apiStatus(e) ?? 'error'}); deriving it from the service range`);
  }
  const range = (await serviceCidrs(kube, log).catch(() => []))[0];
  const ip = range ? addressInCidr(range, 1) : undefined;
  if (!ip) return undefined;
  return { metadata: { name: 'kubernetes', namespace: 'default' }, spec: { clusterIP: ip, ports: [{ name: 'https', port: 443, protocol: 'TCP' }] } };
}

/** Services a container that started at `since` saw: the kubelet builds service links when it starts the container. */
async function namespaceServices(kube: Kube, w: Workload): Promise<V1Service[]> {
  if (w.pod.spec?.enableServiceLinks === false) return [];
  const all = (await call(kube, 'list', 'services', () => kube.core.listNamespacedService({ namespace: kube.namespace }))).items;
  const started = w.live ? w.pod.status?.containerStatuses?.find((c) => c.name === w.container.name)?.state?.running?.startedAt : undefined;
  if (!started) return all;
  const t = new Date(started).getTime();
  return all.filter((s) => !s.metadata?.creationTimestamp || new Date(s.metadata.creationTimestamp).getTime() <= t);
}

async function nodeAllocatable(kube: Kube, w: Workload, log: Logger): Promise<Record<string, string> | undefined> {
  const node = w.pod.spec?.nodeName;
  if (!node) return undefined;
  const n: V1Node | undefined = await kube.core.readNode({ name: node }).catch((e: unknown) => { log.debug(`cannot read node ${node} (${apiStatus(e) ?? 'error'})`); return undefined; });
  return n?.status?.allocatable as Record<string, string> | undefined;
}

const needsNode = (w: Workload): boolean => [...(w.container.env ?? []).map((e) => e.valueFrom?.resourceFieldRef), ...(w.pod.spec?.volumes ?? []).flatMap((v) => [...(v.downwardAPI?.items ?? []), ...(v.projected?.sources ?? []).flatMap((s) => s.downwardAPI?.items ?? [])]).map((i) => i.resourceFieldRef)]
  .some((r) => r?.resource.startsWith('limits.') && !w.container.resources?.limits?.[r.resource.slice('limits.'.length)]);

/**
 * Reads what the container references and builds its environment and mount plan, before the
 * session creates anything. Without the right to read them: one sentence, or with --env-optional
 * a warning and no environment.
 */
export async function preparePodEnv(kube: Kube, log: Logger, req: PodEnvRequest | undefined, source?: WorkloadSource): Promise<PodEnv | undefined> {
  if (!req) return undefined;
  for (const line of removeDeadSessionsFiles()) log.progress(line);
  const src = source ?? await sourceFromFlag(kube, req.envFrom!);
  const w = pickWorkload(src, kube.namespace, req.container);
  const refs = referencedObjects(w.pod.spec, w.container, { env: true, mounts: !!req.mountDir });
  const { objects, refused } = await readObjects(kube, refs);
  const what = `${src.what} (container ${w.container.name})`;
  if (refused.length > 0) {
    refused.sort();
    const kinds = [...new Set(refused.map((r) => r.split('/')[0]!))].map((k) => `get ${k}s`).join(' and ');
    const sentence = `you may not read ${refused.join(', ')} in namespace "${kube.namespace}", which ${what} uses; kt needs the rule ${kinds} in a Role bound to you ('kubectl kt-connect rbac' prints it)`;
    if (!req.optional) throw new UserError(`${sentence}, or pass --env-optional to go on without the pod's environment and files.`);
    log.warn(`${sentence}; going on without the pod's environment and files (--env-optional).`);
    return undefined;
  }
  const [services, master, allocatable] = await Promise.all([namespaceServices(kube, w), masterService(kube, log), needsNode(w) ? nodeAllocatable(kube, w, log) : undefined]);
  const built = buildEnv({ pod: w.pod, container: w.container, configMaps: objects.configMaps, secrets: objects.secrets, services, masterService: master, nodeAllocatable: allocatable });
  const planNow = (): MountPlan => planMounts({ pod: w.pod, container: w.container, configMaps: objects.configMaps, secrets: objects.secrets, env: built.env, nodeAllocatable: allocatable });
  const plan = req.mountDir ? planNow() : undefined;
  const problems = [...built.problems, ...(plan?.problems ?? [])];
  if (problems.length > 0) {
    const sentence = `the environment of ${what} cannot be built as Kubernetes would: ${problems.join('; ')}`;
    if (!req.optional) throw new UserError(`${sentence}.`);
    log.warn(`${sentence}; going on with the rest (--env-optional).`);
  }
  if (!w.live) log.warn(`${src.what} has no running pod: its environment comes from the pod template, so the pod's IPs and node are empty`);
  const env = { ...built.env, ...(req.mountDir ? { KT_MOUNT: req.mountDir } : {}) };
  log.debug(`environment of ${what}: ${Object.keys(env).length} variables from ${refs.configMaps.length} configmaps and ${refs.secrets.length} secrets`);

  return {
    env,
    async materialise(s: ShadowSession): Promise<void> {
      const mountDirMode = req.mountDir && req.mountDirExists ? modeOf(req.mountDir) : undefined;
      const written: WrittenFiles = { envFile: req.envFile, keepEnvFile: req.keepEnvFile, mountDir: req.mountDir, mountDirCreated: req.mountDir ? !req.mountDirExists : undefined, mountDirMode };
      // Named in the local record before anything is written: a crash leaves nothing kt-clean cannot find.
      s.record({ podenv: written });
      if (req.envFile) {
        const file = req.envFile;
        if (!req.keepEnvFile) s.life.defer(`remove the env file ${file}`, () => { removeWritten({ envFile: file }); });
        await step(`write the env file ${file}`);
        writeEnvFile(file, formatEnv(env, req.format));
        s.log.info(`  the environment of ${what}: ${file} (${req.format}, ${Object.keys(env).length} variables${req.keepEnvFile ? '' : '; removed on exit'})`);
      }
      if (req.mountDir && plan) {
        const dir = req.mountDir;
        s.life.defer(`remove the mounted files under ${dir}`, () => { removeWritten({ mountDir: dir, mountDirCreated: !req.mountDirExists, mountDirMode }); });
        await step(`write the mounted files under ${dir}`);
        writePlan(dir, plan);
        for (const k of plan.skipped) s.log.warn(`volume ${k.volume} is not under ${dir}: ${k.why}`);
        const stop = await watchObjects(s.kube, refs, objects, () => {
          try {
            const r = writePlan(dir, planNow());
            if (r.written.length + r.removed.length > 0) s.log.progress(`updated under ${dir}: ${[...r.written, ...r.removed.map((x) => `${x} (removed)`)].join(', ')}`);
          } catch (e) {
            s.log.warn(`could not update the files under ${dir}: ${(e as NodeJS.ErrnoException).code ?? 'error'}`);
          }
        }, s.log);
        s.life.defer('stop watching the mounted ConfigMaps and Secrets', stop);
        s.log.info(`  the files of ${what}: ${dir} (${plan.files.length} files, kept in step with the cluster; removed on exit); KT_MOUNT=${dir}`);
      }
    },
  };
}

/**
 * Created 0600 (also when it existed with another mode), written whole. Never through a symlink:
 * the secrets would land wherever the link points, which the undo (removing the path) would miss.
 */
function writeEnvFile(path: string, text: string): void {
  let fd: number;
  try {
    fd = openSync(path, fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_TRUNC | fsConstants.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP') throw new UserError(`--env-file ${path} is a symbolic link; kt writes the environment only to a regular file.`, 2);
    throw e;
  }
  try {
    fchmodSync(fd, 0o600);
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * `-- COMMAND`: runs the program with the pod's environment over this one's; Ctrl-C (or SIGTERM)
 * reaches it first and the session ends once it exited; the session also ends when it exits by
 * itself. Resolves with its exit code (128 + signal number when a signal ended it).
 */
export async function runCommand(s: ShadowSession, argv: readonly string[], env: Record<string, string>): Promise<number> {
  const [cmd, ...args] = argv;
  const child = spawn(cmd!, args, { stdio: 'inherit', env: { ...process.env, ...env } });
  const exited = new Promise<number>((done) => {
    child.on('exit', (c, sig) => done(c ?? 128 + (sig ? constants.signals[sig] : 0)));
    child.on('error', (e) => { s.log.warn(`cannot run ${cmd}: ${(e as NodeJS.ErrnoException).code ?? e.message}`); done(127); });
  });
  const code = await Promise.race([exited, s.signal.then(async (sig) => {
    // From a terminal the child got the same Ctrl-C already (same process group): a second one
    // could cut its own shutdown short, so it is passed on only if the child is still there 1 s later.
    if (sig === 'SIGINT' && process.stdin.isTTY) await Promise.race([exited, new Promise((r) => setTimeout(r, 1000))]);
    if (child.exitCode === null && child.signalCode === null) child.kill(sig);
    const t = setTimeout(() => child.kill('SIGKILL'), 10_000);
    const c = await exited;
    clearTimeout(t);
    return c;
  })]);
  s.log.progress(`${cmd} exited with code ${code}; ending the session`);
  await s.life.close();
  return code;
}
