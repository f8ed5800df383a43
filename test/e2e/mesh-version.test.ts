// kt-mesh meets a router of another contract version (contract/index.ts: the compatibility rule).
// The first developer's router serves the mesh; it is then made to report another version with
// the test-only knob ROUTER_ENV.testContractVersion (the image is the same, only what it reports
// changes), and a second developer, bound to exactly the documented Role, tries to join.
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTER_ENV, meshNames } from '../../contract/index.ts';
import { OWN_CONTRACT } from '../../contract/version.ts';
import { createNamespace, deployEcho, eventually, kubectl, kubectlJson, objectsAsWritten, spawnInLaptop } from './cluster.ts';
import { runPlugin, startPlugin, type RunningPlugin } from './plugin.ts';
import { restrictedKubeconfig } from './rbac.ts';

const A = { http: 18920, grpc: 19920, tcp: 17920, name: 'laptop-a', mark: 'alice' };
const B = { http: 18930, mark: 'bob' };
const router = meshNames('echo').router;

describe('kt-mesh and the router\'s contract version', () => {
  const ns = createNamespace('kt-meshver', {
    'pod-security.kubernetes.io/enforce': 'restricted',
    'pod-security.kubernetes.io/enforce-version': 'latest',
  });
  let asDeveloper: Record<string, string> = {};
  let laptop: ChildProcess | undefined;
  let devA: RunningPlugin | undefined;
  const objects = (): string => objectsAsWritten(ns.name, 'pods,services,deployments,configmaps,secrets,serviceaccounts,roles,rolebindings');
  const routerImage = (): string => kubectl(['get', 'deployment', router, '-n', ns.name, '-o', 'jsonpath={.spec.template.spec.containers[0].image}']);

  /** Rolls the router out reporting `version`, and waits until only the new pod is left and ready. */
  const routerReports = async (version: string): Promise<void> => {
    kubectl(['set', 'env', `deployment/${router}`, '-n', ns.name, `${ROUTER_ENV.testContractVersion}=${version}`]);
    kubectl(['rollout', 'status', `deployment/${router}`, '-n', ns.name, '--timeout=120s']);
    type Pod = { metadata: { deletionTimestamp?: string }; spec: { containers: { env?: { name: string; value?: string }[] }[] }; status: { conditions?: { type: string; status: string }[] } };
    await eventually('one ready router pod reporting the new version', 60_000, () => {
      const pods = kubectlJson<{ items: Pod[] }>(['get', 'pods', '-n', ns.name, '-l', `kt.dev/router=echo`]).items;
      const ok = pods.length === 1 && !pods[0]!.metadata.deletionTimestamp
        && pods[0]!.spec.containers[0]!.env?.some((e) => e.name === ROUTER_ENV.testContractVersion && e.value === version)
        && pods[0]!.status.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
      return ok ? true : undefined;
    });
  };

  beforeAll(async () => {
    deployEcho('echo', ns.name);
    asDeveloper = { KUBECONFIG: restrictedKubeconfig(ns.name) };
    laptop = spawnInLaptop(process.execPath, ['test/workloads/echo/server.ts'], {
      ECHO_HOST: '127.0.0.1', ECHO_HTTP_PORT: String(A.http), ECHO_GRPC_PORT: String(A.grpc), ECHO_TCP_PORT: String(A.tcp), POD_NAME: A.name,
    });
    devA = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${A.http}:80`, '--version-mark', A.mark], asDeveloper);
    await devA.waitFor(/Press Ctrl-C to stop/, 180_000);
  });
  afterAll(async () => {
    if (devA && devA.proc.exitCode === null) await devA.stop('SIGINT');
    laptop?.kill('SIGTERM');
    ns.remove();
  });

  it('a second developer refuses to join a router of another contract MAJOR, in one sentence naming the image, creating nothing', async () => {
    const newer = `${OWN_CONTRACT.major + 1}.0`;
    await routerReports(newer);
    const image = routerImage();
    const before = objects();
    // With the step trace on, every change kt would make announces itself first: none may.
    const r = await runPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${B.http}:80`, '--version-mark', B.mark], { ...asDeveloper, KT_TEST_FAULT: 'trace' }, 120_000);
    console.log(`kt-mesh against a router reporting contract ${newer}: exit ${r.code}: ${r.stderr.trim()}`);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).not.toMatch(/kt-step/);
    expect(r.stderr).toContain(`speaks kt contract ${newer} (deployment/${router}, image ${image})`);
    expect(r.stderr).toMatch(/would deploy \S+; use the kt release that deploys /);
    expect(objects()).toBe(before);
    expect(devA!.proc.exitCode).toBeNull();
  });

  it('a second developer joins a router of a newer MINOR, warned once, and leaves', async () => {
    const newerMinor = `${OWN_CONTRACT.major}.${OWN_CONTRACT.minor + 1}`;
    await routerReports(newerMinor);
    const devB = startPlugin('kt-mesh', ['echo', '-n', ns.name, '--expose', `${B.http}:80`, '--version-mark', B.mark], asDeveloper);
    try {
      await devB.waitFor(/Press Ctrl-C to stop/, 180_000);
      const warnings = devB.output().match(/router speaks kt contract \S+, newer than this kt-mesh's/g) ?? [];
      expect(warnings).toHaveLength(1);
      expect(devB.output()).toContain(`speaks kt contract ${newerMinor}, newer than`);
    } finally {
      expect(await devB.stop('SIGINT')).toBe(0);
    }
  });
});
