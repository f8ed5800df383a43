// V8's garbage collector, tuned for a process that moves bulk data through JavaScript (the tunnel's
// two ends). Every buffer a stream, TLS or ssh2 allocates is external memory, and V8 started a
// full mark-compact of the whole heap by a task while the heap was far below its limit, so a bulk
// transfer on the laptop (a 35 MB live heap: the Kubernetes client) ran one every 15 MB moved, and garbage collection was 35-40% of the process's CPU (perf). Starting
// marking only when 90% of that room is used (95% at once) cut them from 34 to 13 per 512 MiB;
// a limit three times the live heap instead of about twice cuts more, at the price of a heap that
// may grow to three times its live size between collections. With the leaner AES-GCM
// (ssh-gcm.ts), the laptop's CPU per GiB fell by about a third (`npm run bench:cpu`). These are
// V8's heuristics, read at each decision, so setting them at run time takes effect at once.
import { setFlagsFromString } from 'node:v8';

export const BULK_GC_FLAGS = ['--incremental-marking-soft-trigger=90', '--incremental-marking-hard-trigger=95', '--heap-growing-percent=200'];

let tuned = false;

export function tuneGcForBulk(): void {
  if (tuned) return;
  tuned = true;
  for (const flag of BULK_GC_FLAGS) setFlagsFromString(flag);
}
