// A wider SSH channel window, for both ends of the tunnel. ssh2 fixes a channel's receive window at
// 2 MiB; the path between the laptop and the shadow (API server, kubelet, container runtime) queues
// deeply, so a bulk transfer spends most of that window in buffers and stalls. Each side widens
// its own receive window by `extra` and keeps it wide by re-granting what arrived, but only while
// the reader keeps up (push() returns true): a stalled reader gets no more than the window, so
// memory stays bounded. Uses ssh2 internals (channel.incoming/outgoing,
// protocol.channelWindowAdjust) and does nothing if they are not there.
import type { Duplex } from 'node:stream';

interface ChannelInternals {
  incoming?: { window: number };
  outgoing?: { id: number; state: string };
  _client?: { _protocol?: { channelWindowAdjust(id: number, amount: number): void } };
}

export const EXTRA_WINDOW = 14 * 1024 * 1024;

export function widenWindow(channel: Duplex, extra = EXTRA_WINDOW): void {
  const c = channel as unknown as ChannelInternals;
  const protocol = c._client?._protocol;
  if (!c.incoming || !c.outgoing || !protocol || typeof protocol.channelWindowAdjust !== 'function') return;
  const grant = (amount: number): void => {
    if (c.outgoing!.state !== 'open') return;
    c.incoming!.window += amount;
    protocol.channelWindowAdjust(c.outgoing!.id, amount);
  };
  grant(extra);
  // ssh2 pushes each arriving packet into the stream; re-grant in steps of a quarter of the extra
  // window, whenever the stream still accepts data.
  const step = Math.max(64 * 1024, Math.floor(extra / 4));
  let owed = 0;
  const push = channel.push.bind(channel);
  channel.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
    const ok = push(chunk, encoding);
    if (Buffer.isBuffer(chunk)) owed += chunk.length;
    if (ok && owed >= step) { grant(owed); owed = 0; }
    return ok;
  };
}
