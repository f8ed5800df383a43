// The watchdog and a plan it cannot finish: a step this shadow does not know is reported, and the
// pod, which carries the plan, stays for a kt-clean that knows the step.
import { describe, expect, it } from 'vitest';
import type { RecoveryPlan } from '../../../contract/index.ts';
import type { RecoveryApi } from '../../../contract/recovery.ts';
import { createLogger } from '../../../runtime/log.ts';
import { startWatchdog } from '../../../shadow/watchdog.ts';

function run(plan: RecoveryPlan): Promise<{ deleted: string[]; errors: string[] }> {
  const deleted: string[] = [];
  const errors: string[] = [];
  const api = {
    delete: async (kind: string, _ns: string, name: string) => { deleted.push(`${kind}/${name}`); },
  } as unknown as RecoveryApi;
  const log = createLogger({ level: 'error', write: (line) => errors.push(String((JSON.parse(line) as { msg: string }).msg)) });
  const dog = startWatchdog({ plan, podName: 'kt-mesh-s1', recoverAfterMs: 0, connections: () => 0, api, log, tickMs: 5 });
  return new Promise((resolve) => setTimeout(() => { dog.stop(); resolve({ deleted, errors }); }, 100));
}

describe('shadow watchdog', () => {
  it('runs the plan and deletes its own pod', async () => {
    const r = await run({ session: 's1', namespace: 'ns', steps: [{ op: 'delete', kind: 'Service', name: 'svc' }] });
    expect(r.deleted).toEqual(['Service/svc', 'Pod/kt-mesh-s1']);
    expect(r.errors).toEqual([]);
  });

  it('reports a step it does not know once, runs the rest, and keeps its pod', async () => {
    const plan = { contract: '1.9', session: 's1', namespace: 'ns', steps: [{ op: 'from-the-future' }, { op: 'delete', kind: 'Service', name: 'svc' }] } as unknown as RecoveryPlan;
    const r = await run(plan);
    expect(r.deleted).toEqual(['Service/svc']);
    expect(r.errors).toHaveLength(2);
    expect(r.errors[0]).toMatch(/recovery step failed: recovery step "from-the-future" is unknown to this kt .* contract 1\.9, which knows it/);
    expect(r.errors[1]).toMatch(/this pod stays, with its recovery plan, for kubectl kt-clean/);
  });
});
