// What --env-file and --mount add to kt-exchange's start: command to ready banner, with and
// without them, alternated, median of 5 each (`npm run bench:podenv`). The
// workload has a ConfigMap, a Secret and a downwardAPI volume and env from each.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createNamespace, deployEcho, kubectl } from '../test/e2e/cluster.ts';
import { startPlugin } from '../test/e2e/plugin.ts';

const RUNS = Number(process.env.KT_BENCH_RUNS ?? 5);
const ns = createNamespace('kt-bench-podenv');
const work = mkdtempSync(join(tmpdir(), 'kt-bench-podenv-'));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
try {
  kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${ns.name}`]);
  kubectl(['create', 'configmap', 'cfg', '-n', ns.name, '--from-literal=LEVEL=debug', '--from-literal=config.yaml=a: 1']);
  kubectl(['create', 'secret', 'generic', 'creds', '-n', ns.name, '--from-literal=PASSWORD=pw']);
  deployEcho('echo', ns.name);
  kubectl(['patch', 'deployment', 'echo', '-n', ns.name, '--type', 'json', '-p', JSON.stringify([
    { op: 'add', path: '/spec/template/spec/containers/0/envFrom', value: [{ configMapRef: { name: 'cfg' } }, { secretRef: { name: 'creds' }, prefix: 'S_' }] },
    { op: 'add', path: '/spec/template/spec/volumes', value: [{ name: 'c', configMap: { name: 'cfg' } }, { name: 's', secret: { secretName: 'creds' } }, { name: 'd', downwardAPI: { items: [{ path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } }] } }] },
    { op: 'add', path: '/spec/template/spec/containers/0/volumeMounts', value: [{ name: 'c', mountPath: '/etc/app' }, { name: 's', mountPath: '/etc/secret' }, { name: 'd', mountPath: '/etc/podinfo' }] },
  ])]);
  kubectl(['rollout', 'status', 'deployment/echo', '-n', ns.name, '--timeout=120s']);
  const times: Record<'plain' | 'podenv', number[]> = { plain: [], podenv: [] };
  for (let i = 0; i < RUNS; i++) {
    for (const kind of ['plain', 'podenv'] as const) {
      const extra = kind === 'podenv' ? ['--env-file', join(work, `${i}.env`), '--mount', join(work, `mnt-${i}`)] : [];
      const t0 = Date.now();
      const p = startPlugin('kt-exchange', ['echo', '-n', ns.name, '--expose', '18480:80', ...extra]);
      await p.waitFor(/Press Ctrl-C to stop/, 120_000);
      times[kind].push(Date.now() - t0);
      await p.stop('SIGINT');
    }
  }
  process.stdout.write(`kt-exchange command to ready banner, median of ${RUNS}: without ${median(times.plain)} ms (${times.plain.join(', ')}), with --env-file --mount ${median(times.podenv)} ms (${times.podenv.join(', ')}): +${median(times.podenv) - median(times.plain)} ms\n`);
} finally {
  ns.remove();
  rmSync(work, { recursive: true, force: true });
}
