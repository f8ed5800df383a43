import type { V1SelfSubjectAccessReview } from '@kubernetes/client-node';
import { describe, expect, it } from 'vitest';
import { canI, type Kube } from '../../../../plugins/kube/kube.ts';
import { requireRights, SHADOW_RIGHTS } from '../../../../plugins/kube/rights.ts';

type Attributes = NonNullable<NonNullable<V1SelfSubjectAccessReview['spec']>['resourceAttributes']>;

/** A cluster that allows whatever `allow` says, recording every review asked. */
function fakeKube(allow: (a: Attributes) => boolean): { kube: Kube; asked: Attributes[] } {
  const asked: Attributes[] = [];
  const api = {
    createSelfSubjectAccessReview: ({ body }: { body: V1SelfSubjectAccessReview }): Promise<V1SelfSubjectAccessReview> => {
      const a = body.spec!.resourceAttributes!;
      asked.push(a);
      return Promise.resolve({ ...body, status: { allowed: allow(a) } });
    },
  };
  const kube = { namespace: 'team-a', server: 'https://api.example:6443', contextNamespace: 'team-a', kc: { makeApiClient: () => api } };
  return { kube: kube as unknown as Kube, asked };
}

describe('rights asked up front', () => {
  it('a subresource is asked as resource and subresource apart, as RBAC matches pods/* and */portforward', async () => {
    const { kube, asked } = fakeKube(() => true);
    expect(await canI(kube, 'get', 'pods/portforward', 'team-a')).toBe(true);
    expect(asked).toEqual([{ verb: 'get', resource: 'pods', subresource: 'portforward', group: '', namespace: 'team-a' }]);
  });

  it('a user who may not open the port-forward is refused before the shadow pod exists, naming the rule', async () => {
    const { kube } = fakeKube((a) => a.subresource !== 'portforward');
    await expect(requireRights(kube, SHADOW_RIGHTS)).rejects.toThrow(/cannot get pods\/portforward in namespace "team-a".*resources: \[pods\/portforward\], verbs: \[get\]/);
  });

  it('get alone on pods/portforward is refused, naming create (asked for by Kubernetes 1.35 and later)', async () => {
    const { kube } = fakeKube((a) => !(a.subresource === 'portforward' && a.verb === 'create'));
    await expect(requireRights(kube, SHADOW_RIGHTS)).rejects.toThrow(/cannot create pods\/portforward in namespace "team-a".*resources: \[pods\/portforward\], verbs: \[create\]/);
  });

  it('the documented Role is enough', async () => {
    const { kube } = fakeKube(() => true);
    await expect(requireRights(kube, SHADOW_RIGHTS)).resolves.toBeUndefined();
  });
});
