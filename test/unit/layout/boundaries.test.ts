// The sides (plugins on the laptop, the shadow and the router in the cluster) never import each
// other: what two sides share lives in runtime/ (code both run) or contract/ (what they agree on),
// and neither of those imports a side. Otherwise a change made for one image silently changes the
// other, or the laptop.
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { describe, expect, it } from 'vitest';

const SIDES = ['plugins', 'shadow', 'router'] as const;
/** Which top-level folders (or files: package.json, for the version) each folder may import from. */
const ALLOWED: Record<string, readonly string[]> = {
  plugins: ['plugins', 'runtime', 'contract', 'package.json'],
  shadow: ['shadow', 'runtime', 'contract', 'package.json'],
  router: ['router', 'runtime', 'contract', 'package.json'],
  runtime: ['runtime', 'contract'],
  contract: ['contract', 'package.json'],
};

const IMPORT_RE = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;

/** `file -> imported file` pairs that cross a boundary, for files given by repository path. */
export function violations(files: ReadonlyMap<string, string>): string[] {
  const out: string[] = [];
  for (const [path, source] of files) {
    const top = path.split('/')[0]!;
    const allowed = ALLOWED[top];
    if (!allowed) continue;
    for (const m of source.matchAll(IMPORT_RE)) {
      const target = normalize(join(dirname(path), m[2]!));
      const targetTop = target.split('/')[0]!;
      if (target.startsWith('..') || !allowed.includes(targetTop)) out.push(`${path} -> ${target}`);
    }
  }
  return out;
}

function sourceTree(): Map<string, string> {
  const files = new Map<string, string>();
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts')) files.set(relative('.', p), readFileSync(p, 'utf8'));
    }
  };
  for (const top of Object.keys(ALLOWED)) walk(top);
  return files;
}

describe('layout boundaries', () => {
  it('catches a side importing another side, and a shared folder importing a side', () => {
    const bad = new Map([
      ['router/x.ts', "import { dial } from '../shadow/ssh/dial.ts';"],
      ['runtime/y.ts', "import type { Tunnel } from '../plugins/tunnel/tunnel.ts';"],
      ['contract/z.ts', "export { x } from '../runtime/log.ts';"],
      ['runtime/v.ts', "import { SHADOW_PORT } from '../contract/index.ts';\nimport { dial } from '../shadow/ssh/dial.ts';"],
      ['plugins/cli/w.ts', "const m = await import('../../router/routes.ts');"],
      ['shadow/ok.ts', "import { createLogger } from '../runtime/log.ts';\nimport { SHADOW_PORT } from '../contract/index.ts';"],
    ]);
    expect(violations(bad)).toEqual([
      'router/x.ts -> shadow/ssh/dial.ts',
      'runtime/y.ts -> plugins/tunnel/tunnel.ts',
      'contract/z.ts -> runtime/log.ts',
      'runtime/v.ts -> shadow/ssh/dial.ts',
      'plugins/cli/w.ts -> router/routes.ts',
    ]);
  });

  it('holds for the whole tree', () => {
    const files = sourceTree();
    expect(files.size).toBeGreaterThan(100);
    for (const side of SIDES) expect([...files.keys()].some((f) => f.startsWith(`${side}/`))).toBe(true);
    expect(violations(files)).toEqual([]);
  });
});
