// --include-cidr must not take the API server's address (kt's own tunnel runs to it).
import { describe, expect, it } from 'vitest';
import { includeCoversApiServer, refuseIncludedApiServer } from '../../../../../plugins/connect/transparent/api-server-guard.ts';

describe('an --include-cidr that covers the API server', () => {
  it('is refused in one sentence naming the range and the address', () => {
    expect(includeCoversApiServer(['10.96.0.0/16', '10.201.0.0/16'], ['10.201.0.1'])).toBe(
      "--include-cidr 10.201.0.0/16 covers the API server's address 10.201.0.1, and capturing it would cut kt's own connection to the cluster; name a range without it.",
    );
    expect(includeCoversApiServer(['10.201.0.1'], ['10.201.0.1'])).toMatch(/^--include-cidr 10.201.0.1 covers/);
    expect(includeCoversApiServer(['0.0.0.0/0'], ['192.0.2.7'])).toMatch(/192.0.2.7/);
    expect(includeCoversApiServer(['fd00::/8'], ['fd00::1'])).toMatch(/fd00::1/);
  });

  it('lets ranges beside it through', () => {
    expect(includeCoversApiServer(['10.96.0.0/16', '10.201.1.0/24', 'fd00::/8'], ['10.201.0.1'])).toBeUndefined();
    expect(includeCoversApiServer([], ['10.201.0.1'])).toBeUndefined();
  });

  it('reads the address from the server URL', async () => {
    await expect(refuseIncludedApiServer(['10.201.0.0/24'], 'https://10.201.0.1:6443')).rejects.toThrow(/covers the API server's address 10.201.0.1/);
    await expect(refuseIncludedApiServer(['10.202.0.0/24'], 'https://10.201.0.1:6443')).resolves.toBeUndefined();
  });
});
