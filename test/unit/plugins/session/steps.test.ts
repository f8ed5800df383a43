import { afterEach, describe, expect, it } from 'vitest';
import { InjectedFault, parseFault, resetSteps, step } from '../../../../plugins/session/steps.ts';

describe('start-up steps and fault injection', () => {
  afterEach(() => { delete process.env.KT_TEST_FAULT; resetSteps(); });

  it('reads trace, fail:N and interrupt:N, and refuses anything else in one sentence', () => {
    expect(parseFault(undefined)).toBeUndefined();
    expect(parseFault('trace')).toEqual({ kind: 'trace' });
    expect(parseFault('fail:3')).toEqual({ kind: 'fail', step: 3 });
    expect(parseFault('interrupt:12')).toEqual({ kind: 'interrupt', step: 12 });
    for (const bad of ['fail:0', 'fail:', 'boom:1', 'fail:-1', 'fail:1x']) expect(() => parseFault(bad)).toThrow(/KT_TEST_FAULT must be/);
  });

  it('fails exactly the Nth step, naming it', async () => {
    process.env.KT_TEST_FAULT = 'fail:2';
    resetSteps();
    await step('first');
    const e = await step('second').catch((x: unknown) => x);
    expect(e).toBeInstanceOf(InjectedFault);
    expect((e as Error).message).toBe('injected failure at step 2 (second).');
  });

  it('does nothing without KT_TEST_FAULT', async () => {
    resetSteps();
    for (let i = 0; i < 5; i++) await step(`step ${i}`);
  });
});
