import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { dotenvValue, formatEnv } from '../../../../plugins/podenv/env-file.ts';

const tricky: Record<string, string> = {
  PLAIN: 'abc-1.2/x:y@z', EMPTY: '', SPACE: 'a b', SINGLE: "it's", DOUBLE: 'say "hi"', DOLLAR: '$HOME $(X) ${Y}',
  NEWLINE: 'line1\nline2', BACKSLASH: 'a\\b', BOTH: `'"\\$\n\r`, UNICODE: 'grüß 🙂', EQUALS: 'a=b', HASH: '#not a comment',
};

describe('env file formats', () => {
  it('dotenv: bare when safe, single quotes when possible, else escaped double quotes', () => {
    expect(dotenvValue('abc')).toBe('abc');
    expect(dotenvValue('')).toBe('');
    expect(dotenvValue('a b $X')).toBe("'a b $X'");
    expect(dotenvValue("it's \"x\" $Y\n")).toBe('"it\'s \\"x\\" \\$Y\\n"');
    expect(formatEnv({ B: '1', A: '2' }, 'dotenv')).toBe('A=2\nB=1\n');
  });

  it('sh: a POSIX shell that sources the file sees every value byte for byte', () => {
    const text = formatEnv({ ...tricky, 'not.a.name': 'x' }, 'sh');
    expect(text).toContain('# "not.a.name" is not a name a shell can assign; left out');
    const out = execFileSync('sh', ['-c', `${text}\nnode -e 'process.stdout.write(JSON.stringify(Object.fromEntries(process.argv.slice(1).map((k) => [k, process.env[k]]))))' ${Object.keys(tricky).join(' ')}`], { encoding: 'utf8', env: { PATH: process.env.PATH } });
    expect(JSON.parse(out)).toEqual(tricky);
  });

  it('json: one sorted object that parses back to the same values', () => {
    const text = formatEnv(tricky, 'json');
    expect(JSON.parse(text)).toEqual(tricky);
    expect(Object.keys(JSON.parse(text) as object)).toEqual(Object.keys(tricky).sort());
  });

  it('dotenv: a reader with the usual rules gets every value back', () => {
    // The rules Docker Compose and python-dotenv share: bare, '...' literal, "..." with backslash escapes.
    const read = (line: string): [string, string] => {
      const i = line.indexOf('=');
      const k = line.slice(0, i);
      const raw = line.slice(i + 1);
      if (raw.startsWith("'")) return [k, raw.slice(1, -1)];
      if (raw.startsWith('"')) return [k, raw.slice(1, -1).replace(/\\(.)/g, (_, c: string) => ({ n: '\n', r: '\r' } as Record<string, string>)[c] ?? c)];
      return [k, raw];
    };
    const text = formatEnv(tricky, 'dotenv');
    expect(text.trimEnd().split('\n')).toHaveLength(Object.keys(tricky).length);
    expect(Object.fromEntries(text.trimEnd().split('\n').map(read))).toEqual(tricky);
  });
});
