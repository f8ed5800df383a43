import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { rulesFor } from '../../../../plugins/session/self-healing.ts';

describe("a mesh developer's self-healing Role", () => {
  const rules = rulesFor({ session: 's1', namespace: 'ns', steps: [
    { op: 'remove-route', configMap: 'echo-kt-routes' },
    { op: 'unmesh-if-idle', service: 'echo', configMap: 'echo-kt-routes' },
    { op: 'delete', kind: 'Service', name: 'echo-kt-s1' },
  ] }, 'kt-mesh-s1');

  it('may wait for the endpoints and let exactly its router drain, nothing more', () => {
    expect(rules).toContainEqual({ apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list'] });
    expect(rules).toContainEqual({ apiGroups: ['apps'], resources: ['deployments'], verbs: ['get', 'delete'], resourceNames: ['echo-kt-router'] });
    expect(rules.filter((r) => r.resources?.includes('deployments'))).toHaveLength(1);
  });

  it('grants nothing the documented Role lacks (a Role may not grant more than its creator holds)', () => {
    const role = readFileSync('plugins/rbac/kt-developer.yaml', 'utf8');
    const held = [...role.matchAll(/- apiGroups: \[([^\]]*)\]\n\s+resources: \[([^\]]*)\]\n\s+verbs: \[([^\]]*)\]/g)].flatMap((m) => {
      const group = m[1]!.replaceAll('"', '').trim();
      return m[2]!.split(',').flatMap((res) => m[3]!.split(',').map((verb) => `${group}/${res.trim()}/${verb.trim()}`));
    });
    for (const r of rules) for (const g of r.apiGroups ?? []) for (const res of r.resources ?? []) for (const v of r.verbs) expect(held).toContain(`${g}/${res}/${v}`);
  });
});
