// Kubernetes resource quantities ("500m", "128Mi", "1e3") and the downward API's resourceFieldRef
// value (kubelet: ExtractContainerResourceValue): ceil(quantity / divisor), CPU in millis, the rest
// in units; an unset limit is the node's allocatable amount.
import type { V1Container, V1Pod, V1ResourceFieldSelector } from '@kubernetes/client-node';

const SUFFIX: Record<string, number> = {
  '': 1, n: 1e-9, u: 1e-6, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

/** A quantity's value; undefined for text that is not one. */
export function parseQuantity(text: string | number | undefined): number | undefined {
  if (typeof text === 'number') return text;
  const m = /^([+-]?(?:\d+\.?\d*|\.\d+))(?:([eE][+-]?\d+)|(Ki|Mi|Gi|Ti|Pi|Ei|[numkMGTPE])?)$/.exec((text ?? '').trim());
  if (!m) return undefined;
  const n = Number(m[1]);
  if (m[2]) return n * 10 ** Number(m[2].slice(1));
  return n * SUFFIX[m[3] ?? '']!;
}

// Rounding away the float noise of e.g. 0.1 * 1000 before the ceil that Kubernetes applies.
const ceil = (x: number): number => Math.ceil(Number(x.toPrecision(12)));

/** The value a resourceFieldRef gives, as a string; undefined for an unset limit whose node value is unknown. */
export function resourceValue(ref: V1ResourceFieldSelector, pod: V1Pod, container: V1Container, nodeAllocatable?: Record<string, string>): string | undefined {
  const target = ref.containerName ? pod.spec?.containers.find((c) => c.name === ref.containerName) ?? container : container;
  const [kind, resource] = ref.resource.split(/\.(.*)/s) as [string, string];
  const divisor = parseQuantity(ref.divisor as string | undefined) || 1;
  const set = (kind === 'limits' ? target.resources?.limits : target.resources?.requests)?.[resource];
  let amount = parseQuantity(set as string | undefined);
  if (amount === undefined && kind === 'limits') {
    const node = nodeAllocatable?.[resource];
    if (node === undefined) return undefined;
    amount = parseQuantity(node);
  }
  amount ??= 0;
  if (resource === 'cpu') return String(Math.ceil(ceil(amount * 1000) / ceil(divisor * 1000)));
  return String(Math.ceil(ceil(amount) / ceil(divisor)));
}
