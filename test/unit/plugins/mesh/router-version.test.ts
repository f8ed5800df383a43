import { describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, ROUTER_STATUS } from '../../../../contract/index.ts';
import { OWN_CONTRACT } from '../../../../contract/version.ts';
import { judgeRouter, routerContractOf } from '../../../../plugins/mesh/router-version.ts';

const running = 'registry.example/kt-router:0.9.0';
const own = 'ghcr.io/kt-dev/kt-router:0.1.0';
const v = (major: number, minor: number) => ({ major, minor });

describe('joining a mesh: the router\'s contract version', () => {
  it('reads the version from the router\'s status document; none means a router from before versioning (1.0)', () => {
    expect(routerContractOf({ routes: [], [ROUTER_STATUS.versionField]: '3.2' })).toEqual(v(3, 2));
    expect(routerContractOf({ routes: [] })).toEqual(v(1, 0));
    expect(() => routerContractOf({ [ROUTER_STATUS.versionField]: 'latest' })).toThrow(/MAJOR\.MINOR/);
  });

  it('refuses another MAJOR in one sentence naming the running image and the one this kt would deploy', () => {
    for (const peer of [v(OWN_CONTRACT.major + 1, 0), ...(OWN_CONTRACT.major > 0 ? [v(OWN_CONTRACT.major - 1, 7)] : [])]) {
      const j = judgeRouter(peer, 'echo', running, own);
      expect(j.refuse).toBeDefined();
      expect(j.warn).toBeUndefined();
      expect(j.refuse).toContain(`speaks kt contract ${peer.major}.${peer.minor} (deployment/echo-kt-router, image ${running})`);
      expect(j.refuse).toContain(`it speaks contract ${CONTRACT_VERSION} and would deploy ${own}`);
      expect(j.refuse).toContain(`kt release that deploys ${running}`);
      expect(j.refuse!.match(/\. /g)).toBeNull();
      expect(j.refuse!.endsWith('.')).toBe(true);
    }
  });

  it('warns on a newer MINOR and says nothing on the same or an older one', () => {
    const newer = judgeRouter(v(OWN_CONTRACT.major, OWN_CONTRACT.minor + 1), 'echo', running, own);
    expect(newer.refuse).toBeUndefined();
    expect(newer.warn).toContain(`newer than this kt-mesh's ${CONTRACT_VERSION}`);
    expect(judgeRouter(OWN_CONTRACT, 'echo', running, own)).toEqual({ compatibility: 'same' });
  });
});
