// Lays out the root filesystem of an image that runs one Node program and nothing else: the Node
// binary (stripped of its symbol tables and debug info, a third of its size), the shared libraries
// it links at the paths the loader looks them up, CA certificates, and /etc/passwd and /etc/group
// naming uid 1000. No shell, no npm, no package manager: an image `FROM scratch` with this folder
// copied to / runs `node` as the pod needs it. Run by the Node that will be copied.
//   node images/runtime-root.ts ROOTFS
import { execFileSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';

const rootfs = process.argv[2];
if (!rootfs) {
  console.error('usage: node images/runtime-root.ts ROOTFS');
  process.exit(2);
}

/** The program loader of this process (ld-linux-*.so.*), as mapped in memory. */
function loader(): string {
  const found = /\s(\/\S*\/ld-linux[^/\s]*\.so\.\d+)$/m.exec(readFileSync('/proc/self/maps', 'utf8'));
  if (!found?.[1]) throw new Error('no ld-linux loader is mapped in this process: is this a glibc Node?');
  return found[1];
}

/**
 * The libraries a binary links, each at the path the loader resolves it to: what `ldd` prints,
 * asked of the loader itself, which every glibc image has (ldd is a bash script some lack).
 */
function linkedLibraries(ld: string, binary: string): string[] {
  const paths: string[] = [];
  for (const line of execFileSync(ld, ['--list', binary], { encoding: 'utf8' }).split('\n')) {
    const path = /=>\s+(\/\S+)\s+\(/.exec(line)?.[1];
    if (path && !paths.includes(path)) paths.push(path);
  }
  return paths;
}

/** The loader path a 64-bit little-endian ELF executable names (PT_INTERP), where the kernel looks. */
function interpreter(binary: string): string {
  const elf = readFileSync(binary);
  if (elf.readUInt32BE(0) !== 0x7f454c46 || elf[4] !== 2 || elf[5] !== 1) throw new Error(`${binary} is not a 64-bit little-endian ELF file`);
  const phoff = Number(elf.readBigUInt64LE(0x20));
  const phentsize = elf.readUInt16LE(0x36);
  for (let i = 0; i < elf.readUInt16LE(0x38); i++) {
    const ph = phoff + i * phentsize;
    if (elf.readUInt32LE(ph) !== 3) continue;
    const offset = Number(elf.readBigUInt64LE(ph + 8));
    const size = Number(elf.readBigUInt64LE(ph + 32));
    return elf.toString('latin1', offset, offset + size).replace(/\0+$/, '');
  }
  throw new Error(`${binary} names no program interpreter (statically linked?)`);
}

const node = process.execPath;
const ld = loader();
const libraries = linkedLibraries(ld, node).filter((l) => realpathSync(l) !== realpathSync(ld));
if (!libraries.some((l) => l.includes('libc.so'))) throw new Error(`the loader listed no libc for ${node}`);
const interp = interpreter(node);

const bin = join(rootfs, 'usr/local/bin/node');
mkdirSync(dirname(bin), { recursive: true });
execFileSync('strip', ['--strip-all', '-o', bin, node], { stdio: 'inherit' });
chmodSync(bin, 0o755);
for (const [from, path] of [...libraries.map((l) => [l, l]), [ld, interp]] as const) {
  const to = join(rootfs, path);
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(from, to);
}

// Node carries its own root CAs; the system bundle is there for NODE_EXTRA_CA_CERTS and
// --use-system-ca, as in the slim image.
for (const ca of ['/etc/ssl/certs/ca-certificates.crt']) {
  if (!existsSync(ca)) continue;
  mkdirSync(join(rootfs, dirname(ca)), { recursive: true });
  copyFileSync(ca, join(rootfs, ca));
}
mkdirSync(join(rootfs, 'etc'), { recursive: true });
writeFileSync(join(rootfs, 'etc/passwd'), 'root:x:0:0:root:/root:/sbin/nologin\nnode:x:1000:1000::/home/node:/sbin/nologin\n');
writeFileSync(join(rootfs, 'etc/group'), 'root:x:0:\nnode:x:1000:\n');
mkdirSync(join(rootfs, 'tmp'), { recursive: true });
chmodSync(join(rootfs, 'tmp'), 0o1777);
console.log(`runtime root: node (stripped), ${interp} and ${libraries.length} libraries: ${libraries.join(' ')}`);
