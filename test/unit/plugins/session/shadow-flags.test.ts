import { describe, expect, it } from 'vitest';
import type { Parsed } from '../../../../plugins/cli/cli.ts';
import { parseDuration, MIN_RECOVER_AFTER_MS } from '../../../../plugins/cli/duration.ts';
import { shadowOptions } from '../../../../plugins/session/shadow-flags.ts';

const parsed = (flags: Parsed['flags']): Parsed => ({
  flags: { 'cpu-request': '50m', 'memory-request': '64Mi', 'memory-limit': '256Mi', 'cluster-domain': 'cluster.local', image: 'kt-shadow:dev', ...flags },
  positionals: [], rest: [],
});

describe('shadow pod flags are checked before anything is created', () => {
  it('accepts Kubernetes quantities and names', () => {
    expect(shadowOptions(parsed({ 'cpu-request': '0.5', 'memory-limit': '1Gi', 'service-account': 'builder', 'image-pull-secret': 'regcred.v2' })).resources)
      .toEqual({ cpuRequest: '0.5', memoryRequest: '64Mi', memoryLimit: '1Gi' });
  });

  it('refuses a value Kubernetes would refuse, naming the flag', () => {
    expect(() => shadowOptions(parsed({ 'cpu-request': 'lots' }))).toThrow('--cpu-request must be a Kubernetes quantity (like 100m, 64Mi or 1Gi), not "lots".');
    expect(() => shadowOptions(parsed({ 'memory-limit': '256MB' }))).toThrow(/--memory-limit must be a Kubernetes quantity/);
    expect(() => shadowOptions(parsed({ 'service-account': 'Builder_1' }))).toThrow(/--service-account must name a Kubernetes object/);
    expect(() => shadowOptions(parsed({ 'cluster-domain': 'cluster..local' }))).toThrow(/--cluster-domain must be a DNS domain/);
  });

  it('durations name their flag and refuse a --recover-after shorter than a reconnect', () => {
    expect(parseDuration('90s', 'recover-after', MIN_RECOVER_AFTER_MS)).toBe(90_000);
    expect(() => parseDuration('soon', 'recover-after')).toThrow('--recover-after "soon" is not a duration; use e.g. 90s, 5m or 1h.');
    expect(() => parseDuration('1s', 'recover-after', MIN_RECOVER_AFTER_MS)).toThrow('--recover-after must be at least 5s, not "1s".');
  });
});
