// A session is one run of a kt command. Its id names and labels everything it creates, so that
// it, kt-status and kt-clean can always find what belongs to it.
import type { V1OwnerReference } from '@kubernetes/client-node';
import { randomBytes } from 'node:crypto';
import { hostname, userInfo } from 'node:os';
import { ANNOTATION, LABEL, MANAGED_BY, type Role } from '../../contract/index.ts';
import { VERSION } from '../cli/version.ts';

export type SessionKind = 'connect' | 'exchange' | 'mesh' | 'preview';

export interface Session {
  id: string;
  kind: SessionKind;
  user: string;
  namespace: string;
}

export function newSession(kind: SessionKind, namespace: string): Session {
  // 10 lowercase hex chars: valid in names and labels, and collision-free enough per namespace.
  const id = randomBytes(5).toString('hex');
  let user = 'unknown';
  try { user = userInfo().username; } catch { /* no passwd entry */ }
  return { id, kind, user: `${user}@${hostname()}`, namespace };
}

export function objectName(s: Session, suffix = ''): string {
  return `kt-${s.kind}-${s.id}${suffix}`;
}

export function labels(s: Session, role: Role): Record<string, string> {
  return { [LABEL.managedBy]: MANAGED_BY, [LABEL.role]: role, [LABEL.session]: s.id };
}

export function annotations(s: Session): Record<string, string> {
  return { [ANNOTATION.user]: s.user, [ANNOTATION.kind]: s.kind, [ANNOTATION.version]: VERSION };
}

/** A patch making an object owned by the pod: deleting the pod deletes it too, even without kt. */
export function ownedByPod(pod: { name: string; uid: string }): { metadata: { ownerReferences: V1OwnerReference[] } } {
  return { metadata: { ownerReferences: [{ apiVersion: 'v1', kind: 'Pod', name: pod.name, uid: pod.uid, blockOwnerDeletion: false }] } };
}

export function sessionSelector(s: Session): string {
  return `${LABEL.managedBy}=${MANAGED_BY},${LABEL.session}=${s.id}`;
}

export const allKtSelector = `${LABEL.managedBy}=${MANAGED_BY}`;
