// Refusing an incoming channel with a reason the client can show.
//
// ssh2's reject() for a channel open always sends an empty description and picks the reason code
// itself (CONNECT_FAILED once a channel id is reserved). The laptop is far better served by
// "connect ECONNREFUSED 10.96.0.50:80" or "too many channels", so for the one synchronous call
// reject() makes, the description and reason are swapped in at the protocol object. Should ssh2's
// internals ever differ, this degrades to a plain reject().
import type { Connection } from 'ssh2';

/** SSH_MSG_CHANNEL_OPEN_FAILURE reason codes (RFC 4254 §5.1). */
export const OPEN_FAILURE = {
  administrativelyProhibited: 1,
  connectFailed: 2,
  unknownChannelType: 3,
  resourceShortage: 4,
} as const;

type OpenFail = (recipient: number, reason: number, description: string) => void;

/** Longest description sent; the peer shows it verbatim. */
const MAX_DESCRIPTION = 200;

export function rejectChannel(conn: Connection, reject: () => void, reason: number, description: string): void {
  const protocol: unknown = (conn as unknown as { _protocol?: unknown })._protocol;
  const original: unknown =
    typeof protocol === 'object' && protocol !== null ? (protocol as { channelOpenFail?: unknown }).channelOpenFail : undefined;
  if (typeof original !== 'function') {
    reject();
    return;
  }
  const target = protocol as { channelOpenFail: OpenFail };
  const hadOwn = Object.hasOwn(target, 'channelOpenFail');
  const text = description.length > MAX_DESCRIPTION ? `${description.slice(0, MAX_DESCRIPTION - 1)}…` : description;
  target.channelOpenFail = (recipient) => (original as OpenFail).call(protocol, recipient, reason, text);
  try {
    reject();
  } finally {
    if (hadOwn) target.channelOpenFail = original as OpenFail;
    else delete (target as { channelOpenFail?: OpenFail }).channelOpenFail;
  }
}
