// The sending side both UDP tools share: COUNT numbered datagrams with at most WINDOW in flight,
// each given up after 2 s (counted lost), the window refilled as echoes come back.

export interface WindowCounts { sent: number; received: number; lost: number; duplicates: number }

/**
 * Starts sending with `sendOne(seq)`; feed each echo's sequence number to `ack`, which says whether
 * it was the first echo of a datagram still waited for ('new'), a repeat ('duplicate') or came
 * after it was given up ('late').
 */
export function windowedSend(count: number, window: number, sendOne: (seq: number) => void): { ack(seq: number): 'new' | 'duplicate' | 'late'; done: Promise<WindowCounts> } {
  const pending = new Map<number, NodeJS.Timeout>();
  const seen = new Set<number>();
  let next = 0;
  let lost = 0;
  let duplicates = 0;
  let finish!: () => void;
  const done = new Promise<void>((resolve) => (finish = resolve));
  const pump = (): void => {
    while (pending.size < window && next < count) {
      const seq = next++;
      pending.set(seq, setTimeout(() => { pending.delete(seq); lost++; pump(); }, 2000));
      sendOne(seq);
    }
    if (pending.size === 0 && next >= count) finish();
  };
  const ack = (seq: number): 'new' | 'duplicate' | 'late' => {
    const timer = pending.get(seq);
    if (timer) {
      clearTimeout(timer);
      pending.delete(seq);
      seen.add(seq);
      pump();
      return 'new';
    }
    if (seen.has(seq)) { duplicates++; return 'duplicate'; }
    return 'late';
  };
  pump();
  return { ack, done: done.then(() => ({ sent: next, received: seen.size, lost, duplicates })) };
}
