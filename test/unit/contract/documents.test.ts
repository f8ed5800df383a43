// The validators every side reads shared documents through, and what recovery does with a step
// this version does not know (reported as a failure, never skipped).
import { describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, ROUTES_KEY, type RecoveryPlan, type RouteTable } from '../../../contract/index.ts';
import { parseRecoveryPlan, serializeRecoveryPlan, validateLock, validateRecoveryPlan } from '../../../contract/documents.ts';
import { parseLock, parseTable, runRecovery, updateRoutes, type ConfigMapView, type RecoveryApi } from '../../../contract/recovery.ts';
import { RouteTableError, parseRouteTable, validateRouteTable, writeBackRouteTable } from '../../../contract/route-table.ts';
import { OWN_CONTRACT } from '../../../contract/version.ts';

const table: RouteTable = {
  header: 'kt-version',
  ports: [{ port: 8080, protocol: 'http', name: 'http' }],
  defaultTarget: 'echo-kt-stuntman.ns.svc.cluster.local',
  routes: [{ version: 'alice', target: 'echo-kt-s1.ns.svc.cluster.local', session: 's1', user: 'alice@box' }],
};
const nextMajor = `${OWN_CONTRACT.major + 1}.0`;
const nextMinor = `${OWN_CONTRACT.major}.${OWN_CONTRACT.minor + 1}`;

/** Only what recovery needs of configmaps and services; everything else fails loudly. */
function fakeApi(configMaps: Map<string, ConfigMapView>, deleted: string[] = []): RecoveryApi {
  const no = (): never => { throw new Error('not in this test'); };
  return {
    getConfigMap: async (_ns, name) => configMaps.get(name),
    replaceConfigMapData: async (_ns, name, data, rv) => {
      const cm = configMaps.get(name);
      if (!cm || cm.resourceVersion !== rv) return false;
      configMaps.set(name, { data, resourceVersion: String(Number(rv) + 1) });
      return true;
    },
    deleteConfigMap: async (_ns, name) => { configMaps.delete(name); deleted.push(`ConfigMap/${name}`); },
    getService: async () => undefined,
    patchService: no,
    getDeployment: async () => undefined,
    patchDeployment: no,
    delete: async (kind, _ns, name) => { deleted.push(`${kind}/${name}`); },
    listEndpoints: async () => [],
    deleteDeploymentForeground: no,
  };
}

describe('the route table validator, shared by router, shadow and laptop', () => {
  it('reads a table without a version (written before versioning) and one of a newer MINOR, ignoring what it adds', () => {
    expect(validateRouteTable(table)).toEqual(table);
    const newer = { ...table, contract: nextMinor, mirror: { percent: 5 }, routes: [{ ...table.routes[0], weight: 2 }] };
    expect(validateRouteTable(newer)).toEqual({ ...table, contract: nextMinor });
  });

  it('refuses a table written by a newer MAJOR, and a malformed version', () => {
    expect(() => validateRouteTable({ ...table, contract: nextMajor })).toThrow(RouteTableError);
    expect(() => validateRouteTable({ ...table, contract: nextMajor })).toThrow(new RegExp(`contract ${nextMajor.replace('.', '\\.')}, whose MAJOR is newer`));
    expect(() => validateRouteTable({ ...table, contract: 1 })).toThrow(/"contract" must be a contract version/);
    // An older MAJOR's reader would refuse ours: that is the point of the rule, checked from its side.
    expect(() => validateRouteTable({ ...table, contract: CONTRACT_VERSION }, { major: OWN_CONTRACT.major - 1, minor: 0 })).toThrow(/newer/);
  });

  it('a table that does not validate is an error, never an empty table', () => {
    expect(parseTable(undefined)).toBeUndefined();
    expect(() => parseTable('')).toThrow(/not valid JSON/);
    expect(() => parseTable('{"routes": []}')).toThrow(/"header"/);
    expect(() => parseRouteTable(JSON.stringify({ ...table, routes: 'none' }))).toThrow(/"routes" must be an array/);
  });

  it('written back, a table keeps what a newer MINOR added, and its version never goes down', () => {
    const raw = JSON.stringify({ ...table, contract: nextMinor, mirror: { percent: 5 }, routes: [{ ...table.routes[0], weight: 2 }] });
    const read = parseRouteTable(raw);
    const bob = { version: 'bob', target: 'echo-kt-s2.ns.svc.cluster.local', session: 's2', user: 'bob@box' };
    const written = writeBackRouteTable(raw, { ...read, routes: [...read.routes, bob] });
    expect(written).toEqual({ ...table, contract: nextMinor, mirror: { percent: 5 }, routes: [{ ...table.routes[0], weight: 2 }, bob] });
    expect(writeBackRouteTable(JSON.stringify(table), table).contract).toBe(CONTRACT_VERSION);
  });

  it('updateRoutes reports a table it cannot read instead of treating it as missing', async () => {
    const cms = new Map<string, ConfigMapView>([['r', { data: { [ROUTES_KEY]: '{"header":"kt-version"}' }, resourceVersion: '1' }]]);
    await expect(updateRoutes(fakeApi(cms), 'ns', 'r', (t) => t)).rejects.toThrow(/"ports" must be a non-empty array/);
    expect(await updateRoutes(fakeApi(cms), 'ns', 'absent', (t) => t)).toBe(false);
  });
});

describe('the lock validator', () => {
  it('accepts a lock, ignoring fields a newer MINOR adds, and rejects a malformed one', () => {
    const lock = { session: 's1', user: 'alice@box', kind: 'mesh', since: 5 };
    expect(validateLock({ ...lock, note: 'x' })).toEqual(lock);
    expect(parseLock({ 'kt.dev/lock': JSON.stringify(lock) })).toEqual(lock);
    expect(() => validateLock({ ...lock, kind: 'borrow' })).toThrow(/"kind" must be "exchange" or "mesh"/);
    expect(() => validateLock({ ...lock, since: '5' })).toThrow(/"since"/);
    expect(() => validateLock({ ...lock, session: '' })).toThrow(/"session"/);
    // Not a lock kt can honour: the object counts as unlocked, as before.
    expect(parseLock({ 'kt.dev/lock': '{"session": 1}' })).toBeUndefined();
    expect(parseLock({})).toBeUndefined();
  });
});

describe('the recovery plan validator, and an unknown step', () => {
  const plan: RecoveryPlan = { session: 's1', namespace: 'ns', steps: [{ op: 'remove-route', configMap: 'r' }, { op: 'delete', kind: 'Service', name: 'echo-kt-s1' }] };

  it('the laptop stamps its version; the shadow and kt-clean read the plan back', () => {
    const text = serializeRecoveryPlan(plan);
    expect(JSON.parse(text)).toMatchObject({ contract: CONTRACT_VERSION });
    expect(parseRecoveryPlan(text)).toEqual({ ...plan, contract: CONTRACT_VERSION });
    expect(validateRecoveryPlan(plan).contract).toBe('1.0');
  });

  it('rejects a malformed plan or a malformed known step, naming it', () => {
    expect(() => parseRecoveryPlan('{')).toThrow(/not valid JSON/);
    expect(() => validateRecoveryPlan({ ...plan, steps: {} })).toThrow(/"steps" must be an array/);
    expect(() => validateRecoveryPlan({ ...plan, steps: [{ op: 'delete', kind: 'Node', name: 'x' }] })).toThrow(/steps\[0\]\.kind/);
    expect(() => validateRecoveryPlan({ ...plan, steps: [{ op: 'restore-selector' }] })).toThrow(/steps\[0\]\.service/);
  });

  it('keeps a step of a newer MINOR; running it is a failure naming the op and the version that knows it, and the other steps still run', async () => {
    const newer = validateRecoveryPlan({ ...plan, contract: nextMinor, steps: [{ op: 'restore-hpa', hpa: 'echo' }, ...plan.steps] });
    expect(newer.steps[0]).toEqual({ op: 'restore-hpa', hpa: 'echo' });
    const cms = new Map<string, ConfigMapView>([['r', { data: { [ROUTES_KEY]: JSON.stringify(table) }, resourceVersion: '1' }]]);
    const deleted: string[] = [];
    const r = await runRecovery(newer, fakeApi(cms, deleted));
    expect(r.failed).toEqual([
      `recovery step "restore-hpa" is unknown to this kt (contract ${CONTRACT_VERSION}); the plan was written by a kt speaking contract ${nextMinor}, which knows it: run kubectl kt-clean with that kt to finish`,
    ]);
    expect(r.done).toEqual(['removed the routes of session s1 from configmap/r', 'deleted service/echo-kt-s1']);
    expect(deleted).toEqual(['Service/echo-kt-s1']);
  });

  it('an unknown step in a plan of this very version is malformed, and says so', async () => {
    const r = await runRecovery(validateRecoveryPlan({ ...plan, contract: CONTRACT_VERSION, steps: [{ op: 'typo' }] }), fakeApi(new Map()));
    expect(r.failed).toEqual([`recovery step "typo" is unknown to this kt (contract ${CONTRACT_VERSION}); the plan was written by a kt speaking contract ${CONTRACT_VERSION}, so the step is malformed`]);
  });
});
