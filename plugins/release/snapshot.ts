// A copy of the source tree to build a release from: a commit (git archive), or the working
// tree's files as they are now (tracked and untracked, not ignored), with node_modules hard-linked
// in (copied where links cannot be made). A build from a copy is not disturbed by edits made while
// it runs, and two copies in different folders show that no path of a checkout reaches the bytes.
import { execFileSync, spawnSync } from 'node:child_process';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';

export function snapshot(root: string, dest: string, commit?: string): void {
  rmSync(dest, { recursive: true, force: true });
  mkdirSync(dest, { recursive: true });
  if (commit) {
    const tar = execFileSync('git', ['-C', root, 'archive', '--format=tar', commit], { maxBuffer: 1 << 30 });
    execFileSync('tar', ['-xf', '-', '-C', dest], { input: tar });
  } else {
    const files = execFileSync('git', ['-C', root, 'ls-files', '-z', '--cached', '--others', '--exclude-standard'], { encoding: 'utf8', maxBuffer: 64 << 20 })
      .split('\0').filter((f) => f !== '');
    for (const f of files) {
      mkdirSync(dirname(join(dest, f)), { recursive: true });
      try {
        copyFileSync(join(root, f), join(dest, f));
      } catch (e) {
        // Listed but deleted in the working tree: not part of it.
        if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
      }
    }
  }
  // A real folder, not a link: the bundler names modules by their real path relative to the tree.
  const linked = spawnSync('cp', ['-al', join(root, 'node_modules'), join(dest, 'node_modules')]);
  if (linked.status !== 0) execFileSync('cp', ['-a', join(root, 'node_modules'), join(dest, 'node_modules')]);
}
