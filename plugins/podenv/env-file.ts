// The environment written for other programs to read, sorted by name, in three formats:
// - dotenv: `KEY=value` bare when the value has only safe characters, `KEY='value'` (read
//   literally by Docker Compose, python-dotenv, godotenv and Node's dotenv) when it has no `'` and
//   no line break, else `KEY="..."` with `\\`, `\"`, `\n`, `\r` and `\$` escaped;
// - sh: `export KEY='value'` for POSIX shells (`'` written as `'\''`); names a shell cannot
//   assign are left out with a comment saying so;
// - json: one object.
export const ENV_FORMATS = ['dotenv', 'json', 'sh'] as const;
export type EnvFormat = (typeof ENV_FORMATS)[number];

const BARE = /^[A-Za-z0-9_./:@%+,-]*$/;
const SHELL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

export function dotenvValue(v: string): string {
  if (BARE.test(v)) return v;
  if (!/['\n\r]/.test(v)) return `'${v}'`;
  return `"${v.replace(/[\\"$\n\r]/g, (c) => ({ '\\': '\\\\', '"': '\\"', $: '\\$', '\n': '\\n', '\r': '\\r' })[c]!)}"`;
}

export function shValue(v: string): string {
  return `'${v.replaceAll("'", `'\\''`)}'`;
}

export function formatEnv(env: Record<string, string>, format: EnvFormat): string {
  const names = Object.keys(env).sort();
  if (format === 'json') return `${JSON.stringify(Object.fromEntries(names.map((k) => [k, env[k]!])), null, 2)}\n`;
  const lines = names.map((k) => {
    if (format === 'dotenv') return `${k}=${dotenvValue(env[k]!)}`;
    return SHELL_NAME.test(k) ? `export ${k}=${shValue(env[k]!)}` : `# ${JSON.stringify(k)} is not a name a shell can assign; left out`;
  });
  return lines.length ? `${lines.join('\n')}\n` : '';
}
