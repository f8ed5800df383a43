import { describe, expect, it } from 'vitest';
import { createLogger, parseLogLevel } from '../../../runtime/log.ts';

function capture(level?: 'debug' | 'info' | 'warn' | 'error') {
  const lines: string[] = [];
  const log = createLogger({ level, write: (line) => lines.push(line), now: () => new Date('2026-01-02T03:04:05.000Z') });
  return { lines, log };
}

describe('createLogger', () => {
  it('writes one JSON object per line: time, level, msg, then the fields', () => {
    const { lines, log } = capture();
    log.info('ssh client logged in', { peer: '10.0.0.1:5555', n: 3 });
    expect(lines).toHaveLength(1);
    expect(lines[0]).not.toContain('\n');
    expect(JSON.parse(lines[0] ?? '')).toEqual({
      time: '2026-01-02T03:04:05.000Z',
      level: 'info',
      msg: 'ssh client logged in',
      peer: '10.0.0.1:5555',
      n: 3,
    });
    expect(Object.keys(JSON.parse(lines[0] ?? '{}'))).toEqual(['time', 'level', 'msg', 'peer', 'n']);
  });

  it('drops lines below the level', () => {
    const { lines, log } = capture('warn');
    log.debug('a');
    log.info('b');
    log.warn('c');
    log.error('d');
    expect(lines.map((line) => (JSON.parse(line) as { msg: string }).msg)).toEqual(['c', 'd']);
  });

  it('adds child fields, never lets fields overwrite time/level/msg, and serialises errors', () => {
    const { lines, log } = capture();
    const err = Object.assign(new Error('boom'), { code: 'ECONNRESET' });
    log.child({ component: 'ssh' }).error('failed', { msg: 'sneaky', error: err });
    expect(JSON.parse(lines[0] ?? '')).toMatchObject({
      level: 'error',
      msg: 'failed',
      component: 'ssh',
      'field.msg': 'sneaky',
      error: { name: 'Error', message: 'boom', code: 'ECONNRESET' },
    });
  });
});

describe('parseLogLevel', () => {
  it('knows the four levels', () => {
    expect(parseLogLevel(' Debug ')).toBe('debug');
    expect(parseLogLevel('error')).toBe('error');
    expect(parseLogLevel('trace')).toBeUndefined();
  });
});
