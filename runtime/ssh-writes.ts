// Batches the writes ssh2 makes to its transport, for both ends of the tunnel. ssh2 writes every
// packet as three or four separate pieces (length, ciphertext, tag); on a bare socket each piece is
// a syscall of its own and the peer reads them as separate segments, and on the port-forward each
// burst would start with a frame of 4 bytes. Corking the transport for the rest of the current
// tick turns each burst of packets into one write.
import type { Writable } from 'node:stream';

export function batchWritesPerTick(transport: Writable): void {
  const write = transport.write.bind(transport) as (...args: unknown[]) => boolean;
  let corked = false;
  const uncork = (): void => {
    corked = false;
    if (!transport.destroyed) transport.uncork();
  };
  (transport as { write: (...args: unknown[]) => boolean }).write = (...args: unknown[]): boolean => {
    if (!corked && !transport.destroyed) {
      corked = true;
      transport.cork();
      process.nextTick(uncork);
    }
    return write(...args);
  };
}
