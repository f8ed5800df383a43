import { describe, expect, it } from 'vitest';
import { CONTRACT_VERSION, SHADOW_PING } from '../../../contract/index.ts';
import {
  OWN_CONTRACT, compatibility, isCompatible, maxContractVersion, parseContractVersion, parsePingReply, pingReply, reportedContractVersion,
} from '../../../contract/version.ts';

describe('contract versions', () => {
  it('CONTRACT_VERSION is MAJOR.MINOR', () => {
    expect(OWN_CONTRACT).toEqual(parseContractVersion(CONTRACT_VERSION));
    expect(parseContractVersion('1.0')).toEqual({ major: 1, minor: 0 });
    expect(parseContractVersion(' 12.34 ')).toEqual({ major: 12, minor: 34 });
    for (const bad of ['1', '1.0.0', 'v1.0', '01.0', '1.x', '', '-1.0']) expect(parseContractVersion(bad), bad).toBeUndefined();
  });

  it('another MAJOR is incompatible either way; another MINOR is compatible either way', () => {
    const own = { major: 3, minor: 4 };
    expect(compatibility({ major: 3, minor: 4 }, own)).toBe('same');
    expect(compatibility({ major: 3, minor: 9 }, own)).toBe('newer-minor');
    expect(compatibility({ major: 3, minor: 0 }, own)).toBe('older-minor');
    expect(compatibility({ major: 4, minor: 0 }, own)).toBe('newer-major');
    expect(compatibility({ major: 2, minor: 99 }, own)).toBe('older-major');
    expect(['same', 'newer-minor', 'older-minor'].every((c) => isCompatible(c as never))).toBe(true);
    expect(isCompatible('newer-major') || isCompatible('older-major')).toBe(false);
    expect(maxContractVersion({ major: 1, minor: 9 }, { major: 2, minor: 0 })).toEqual({ major: 2, minor: 0 });
    expect(maxContractVersion({ major: 1, minor: 9 }, { major: 1, minor: 2 })).toEqual({ major: 1, minor: 9 });
  });

  it('the shadow answers the ping with its version; a bare pong is an older shadow speaking 1.0', () => {
    expect(SHADOW_PING.command).toBe('kt-ping');
    expect(pingReply()).toBe(`pong ${CONTRACT_VERSION}\n`);
    expect(parsePingReply(pingReply('2.5'))).toEqual({ major: 2, minor: 5 });
    expect(parsePingReply('pong\n')).toEqual({ major: 1, minor: 0 });
    expect(parsePingReply('pang 1.0')).toBeUndefined();
    expect(parsePingReply('pong one')).toBeUndefined();
    expect(parsePingReply('pong 1.0 extra')).toBeUndefined();
  });

  it('the test-only knob changes the reported version, and a malformed knob is an error', () => {
    expect(reportedContractVersion(undefined)).toBe(CONTRACT_VERSION);
    expect(reportedContractVersion('')).toBe(CONTRACT_VERSION);
    expect(reportedContractVersion('7.3')).toBe('7.3');
    expect(() => reportedContractVersion('7')).toThrow(/MAJOR\.MINOR/);
  });
});
