// Contract versions (MAJOR.MINOR) and the compatibility rule written in index.ts's header, as code:
// what each side reports, how a reported version is read, and what a reader concludes from it.
import { CONTRACT_VERSION, SHADOW_PING, UNVERSIONED_CONTRACT } from './index.ts';

export interface ContractVersion {
  major: number;
  minor: number;
}

const VERSION_RE = /^(0|[1-9]\d{0,5})\.(0|[1-9]\d{0,5})$/;

/** `MAJOR.MINOR`, or undefined for anything else. */
export function parseContractVersion(text: string): ContractVersion | undefined {
  const m = VERSION_RE.exec(text.trim());
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

export function formatContractVersion(v: ContractVersion): string {
  return `${v.major}.${v.minor}`;
}

export const OWN_CONTRACT: ContractVersion = parseContractVersion(CONTRACT_VERSION)!;

/**
 * What a reader concludes about a peer's version:
 * - `same`: nothing to say;
 * - `newer-minor`: compatible, the peer has additions this side ignores;
 * - `older-minor`: compatible, this side's additions are ignored by the peer;
 * - `newer-major` / `older-major`: incompatible.
 */
export type Compatibility = 'same' | 'newer-minor' | 'older-minor' | 'newer-major' | 'older-major';

export function compatibility(peer: ContractVersion, own: ContractVersion = OWN_CONTRACT): Compatibility {
  if (peer.major > own.major) return 'newer-major';
  if (peer.major < own.major) return 'older-major';
  if (peer.minor > own.minor) return 'newer-minor';
  if (peer.minor < own.minor) return 'older-minor';
  return 'same';
}

export function isCompatible(c: Compatibility): boolean {
  return c !== 'newer-major' && c !== 'older-major';
}

/** The higher of two versions (a document's writer version never goes down). */
export function maxContractVersion(a: ContractVersion, b: ContractVersion): ContractVersion {
  return a.major !== b.major ? (a.major > b.major ? a : b) : (a.minor >= b.minor ? a : b);
}

/**
 * The version an image reports: its own, unless the test-only knob (SHADOW_ENV /
 * ROUTER_ENV.testContractVersion) names another. A malformed knob is an error, not ignored: a
 * test that thinks it set a version must not silently run with the real one.
 */
export function reportedContractVersion(knob: string | undefined): string {
  if (knob === undefined || knob.trim() === '') return CONTRACT_VERSION;
  const v = parseContractVersion(knob);
  if (!v) throw new Error(`the test-only contract version must be MAJOR.MINOR, not "${knob}"`);
  return formatContractVersion(v);
}

/** The shadow's answer to SHADOW_PING.command. */
export function pingReply(version: string = CONTRACT_VERSION): string {
  return `${SHADOW_PING.reply} ${version}\n`;
}

/**
 * Reads the shadow's answer to the ping: the version it speaks (a bare `pong` is an older shadow,
 * UNVERSIONED_CONTRACT), or undefined when the answer is no pong at all.
 */
export function parsePingReply(text: string): ContractVersion | undefined {
  const words = text.trim().split(/\s+/);
  if (words[0] !== SHADOW_PING.reply) return undefined;
  if (words.length === 1) return parseContractVersion(UNVERSIONED_CONTRACT);
  return words.length === 2 ? parseContractVersion(words[1]!) : undefined;
}

/** The version a document states in `field`, or UNVERSIONED_CONTRACT when absent; throws when malformed. */
export function documentVersion(value: unknown, where: string): ContractVersion {
  if (value === undefined) return parseContractVersion(UNVERSIONED_CONTRACT)!;
  const v = typeof value === 'string' ? parseContractVersion(value) : undefined;
  if (!v) throw new ContractError(`${where} must be a contract version MAJOR.MINOR, not ${JSON.stringify(value)}`);
  return v;
}

/** A document that breaks the contract; `message` names the first problem. */
export class ContractError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ContractError';
  }
}
