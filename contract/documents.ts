// Validators for the JSON documents besides the route table (contract/route-table.ts): the lock
// annotation and the recovery plan. The laptop writes them, the shadow and the laptop (kt-clean)
// read them; both read through these, so a document one side takes the other takes too.
// Following the compatibility rule (index.ts), fields a newer MINOR added are ignored, and a
// recovery step this version does not know is kept, so that running it reports it (recovery.ts).
import { CONTRACT_VERSION, type Lock, type RecoveryPlan, type RecoveryStep } from './index.ts';
import { ContractError, documentVersion, formatContractVersion } from './version.ts';

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function text(value: unknown, where: string, allowEmpty = false): string {
  if (typeof value !== 'string' || (!allowEmpty && value === '')) throw new ContractError(`${where} must be a${allowEmpty ? '' : ' non-empty'} string, not ${JSON.stringify(value)}`);
  return value;
}

function parseJson(raw: string, what: string): unknown {
  try {
    return JSON.parse(raw) as unknown;
  } catch (err) {
    throw new ContractError(`${what} is not valid JSON: ${(err as Error).message}`);
  }
}

/** The lock annotation's value (ANNOTATION.lock); throws ContractError naming the first problem. */
export function validateLock(value: unknown): Lock {
  if (!isRecord(value)) throw new ContractError('the lock must be a JSON object');
  const kind = value.kind;
  if (kind !== 'exchange' && kind !== 'mesh') throw new ContractError(`the lock's "kind" must be "exchange" or "mesh", not ${JSON.stringify(kind)}`);
  const since = value.since;
  if (typeof since !== 'number' || !Number.isFinite(since)) throw new ContractError(`the lock's "since" must be a time in ms, not ${JSON.stringify(since)}`);
  return { session: text(value.session, 'the lock\'s "session"'), user: text(value.user, 'the lock\'s "user"', true), kind, since };
}

export function parseLockText(raw: string): Lock {
  return validateLock(parseJson(raw, 'the lock'));
}

/** The operations of recovery steps this version knows (RecoveryStep). */
export const KNOWN_STEP_OPS: readonly RecoveryStep['op'][] = ['restore-selector', 'restore-replicas', 'delete', 'remove-route', 'unmesh-if-idle'];

const DELETE_KINDS = ['Pod', 'Service', 'Secret'] as const;

export function isKnownStep(step: { op: string }): boolean {
  return (KNOWN_STEP_OPS as readonly string[]).includes(step.op);
}

function validateStep(value: unknown, where: string): RecoveryStep {
  if (!isRecord(value)) throw new ContractError(`${where} must be an object`);
  const op = text(value.op, `${where}.op`);
  switch (op) {
    case 'restore-selector':
      return { op, service: text(value.service, `${where}.service`) };
    case 'restore-replicas':
      return { op, deployment: text(value.deployment, `${where}.deployment`), ...(value.service !== undefined ? { service: text(value.service, `${where}.service`) } : {}) };
    case 'delete': {
      const kind = value.kind;
      if (!DELETE_KINDS.includes(kind as (typeof DELETE_KINDS)[number])) throw new ContractError(`${where}.kind must be one of ${DELETE_KINDS.join(', ')}, not ${JSON.stringify(kind)}`);
      return { op, kind: kind as (typeof DELETE_KINDS)[number], name: text(value.name, `${where}.name`) };
    }
    case 'remove-route':
      return { op, configMap: text(value.configMap, `${where}.configMap`) };
    case 'unmesh-if-idle':
      return { op, service: text(value.service, `${where}.service`), configMap: text(value.configMap, `${where}.configMap`) };
    default:
      // A step of a newer MINOR: kept as written, so that running it is reported as a failure that
      // names it (never skipped because it did not parse).
      return { ...value, op } as unknown as RecoveryStep;
  }
}

/**
 * A recovery plan, checked: session, namespace, writer version and every known step's fields.
 * Steps with an op this version does not know are kept (see KNOWN_STEP_OPS). Throws ContractError
 * naming the first problem.
 */
export function validateRecoveryPlan(value: unknown): RecoveryPlan {
  if (!isRecord(value)) throw new ContractError('the recovery plan must be a JSON object');
  const contract = formatContractVersion(documentVersion(value.contract, 'the recovery plan\'s "contract"'));
  if (!Array.isArray(value.steps)) throw new ContractError('the recovery plan\'s "steps" must be an array');
  return {
    contract,
    session: text(value.session, 'the recovery plan\'s "session"'),
    namespace: text(value.namespace, 'the recovery plan\'s "namespace"'),
    steps: value.steps.map((s: unknown, i) => validateStep(s, `the recovery plan's steps[${i}]`)),
  };
}

export function parseRecoveryPlan(raw: string): RecoveryPlan {
  return validateRecoveryPlan(parseJson(raw, 'the recovery plan'));
}

/** The plan as the laptop hands it to the shadow (SHADOW_ENV.recoveryPlan): stamped with this version. */
export function serializeRecoveryPlan(plan: RecoveryPlan): string {
  return JSON.stringify({ ...plan, contract: CONTRACT_VERSION });
}
