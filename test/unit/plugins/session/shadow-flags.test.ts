import { describe, expect, it } from 'vitest';
import { command, parse } from '../../../../plugins/cli/cli.ts';
import { parseDuration, MIN_RECOVER_AFTER_MS } from '../../../../plugins/cli/duration.ts';
import { SHADOW_FLAGS, shadowOptions } from '../../../../plugins/session/shadow-flags.ts';

const cmd = command({ name: 'kt-test', summary: '', usage: '', flags: SHADOW_FLAGS, run: () => Promise.resolve(0) });
const parsed = (flags: Record<string, string>): ReturnType<typeof parse<typeof SHADOW_FLAGS>> =>
  parse(cmd, ['--image', 'kt-shadow:dev', ...Object.entries(flags).flatMap(([k, v]) => [`--${k}`, v])]);

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

  it('--pod-timeout takes a duration; a plain number is seconds, as before', () => {
    expect(parsed({}).podTimeout).toBe(120_000);
    expect(parsed({ 'pod-timeout': '90' }).podTimeout).toBe(90_000);
    expect(parsed({ 'pod-timeout': '2m' }).podTimeout).toBe(120_000);
    expect(parsed({ 'pod-timeout': '1m30s' }).podTimeout).toBe(90_000);
    expect(() => parsed({ 'pod-timeout': '0' })).toThrow('--pod-timeout must be at least 1s, not "0".');
    expect(() => parsed({ 'pod-timeout': 'ever' })).toThrow('--pod-timeout "ever" is not a duration; use e.g. 90s, 5m or 1h.');
  });
});
