// Output is whole before a plugin exits: main() sets the exit code and waits until stdout and
// stderr are drained, so a reader slower than the plugin (a pipe that is full) loses nothing, and a
// reader that stops early (head) does not crash it.
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';

const SIZE = 4 * 1024 * 1024;

function plugin(): string {
  const dir = mkdtempSync(join(tmpdir(), 'kt-flush-'));
  const file = join(dir, 'plugin.ts');
  writeFileSync(file, `import { main } from ${JSON.stringify(pathToFileURL(resolve('plugins/cli/main.ts')).href)};
await main({ name: 'kt-flush', summary: '', usage: '', flags: [], run: async () => {
  process.stdout.write('x'.repeat(${SIZE}) + '\\n');
  process.stderr.write('done\\n');
  return 3;
} }, []);
`);
  return file;
}

describe('main() drains its output before exit', () => {
  it('a slow reader gets every byte, and the exit code is kept', async () => {
    const child = spawn(process.execPath, [plugin()], { stdio: ['ignore', 'pipe', 'pipe'] });
    // Read nothing for a while: the pipe fills and the rest waits in the process.
    child.stdout.pause();
    await new Promise((r) => setTimeout(r, 800));
    let bytes = 0;
    let err = '';
    child.stdout.on('data', (d: Buffer) => { bytes += d.length; });
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.resume();
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(bytes).toBe(SIZE + 1);
    expect(err).toBe('done\n');
    expect(code).toBe(3);
  });

  it('a reader that closes early does not crash it', async () => {
    const child = spawn(process.execPath, [plugin()], { stdio: ['ignore', 'pipe', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d: Buffer) => { err += d.toString(); });
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((r) => child.on('close', r));
    expect(err).toBe('done\n');
    expect(code).toBe(3);
  });
});
