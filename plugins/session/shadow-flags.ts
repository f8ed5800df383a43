// Flags every command that deploys a shadow pod shares, and turning them into ShadowOptions.
import { UserError } from '../cli/errors.ts';
import { imageRef } from '../cli/images.ts';
import { keyValues, str, type FlagSpec, type Parsed } from '../cli/cli.ts';
import { DEFAULT_RESOURCES, type ShadowOptions } from './shadow-pod.ts';
import { DEFAULT_CLUSTER_DOMAIN } from '../../contract/index.ts';

export const SHADOW_FLAGS: FlagSpec[] = [
  { name: 'image', type: 'string', description: 'Shadow image (default: $KT_SHADOW_IMAGE, $KT_IMAGE_REGISTRY/kt-shadow:VERSION, or ~/.kt/config.yaml)' },
  { name: 'image-pull-secret', type: 'string', description: 'Secret to pull the shadow image with' },
  { name: 'node-selector', type: 'string', description: 'Node selector for the shadow pod, key=value[,key=value]' },
  { name: 'service-account', type: 'string', description: 'ServiceAccount for the shadow pod' },
  { name: 'cpu-request', type: 'string', description: 'Shadow pod CPU request', default: DEFAULT_RESOURCES.cpuRequest },
  { name: 'memory-request', type: 'string', description: 'Shadow pod memory request', default: DEFAULT_RESOURCES.memoryRequest },
  { name: 'memory-limit', type: 'string', description: 'Shadow pod memory limit', default: DEFAULT_RESOURCES.memoryLimit },
  { name: 'pod-timeout', type: 'string', description: 'How long to wait for the shadow pod to be ready, in seconds', default: '120' },
  { name: 'cluster-domain', type: 'string', description: 'The cluster DNS domain', default: DEFAULT_CLUSTER_DOMAIN },
];

// Kubernetes' own forms, so a bad value is refused here rather than by the API server after the
// session has begun creating things.
const QUANTITY_RE = /^(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e\d+)?$/;
const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DOMAIN_RE = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function quantity(p: Parsed, name: string): string {
  const v = str(p, name)!;
  if (!QUANTITY_RE.test(v)) throw new UserError(`--${name} must be a Kubernetes quantity (like 100m, 64Mi or 1Gi), not "${v}".`, 2);
  return v;
}

function objectName(p: Parsed, name: string): string | undefined {
  const v = str(p, name);
  if (v !== undefined && !NAME_RE.test(v)) throw new UserError(`--${name} must name a Kubernetes object (lower case letters, digits, '-' and '.'), not "${v}".`, 2);
  return v;
}

export function shadowOptions(p: Parsed): ShadowOptions {
  const domain = str(p, 'cluster-domain');
  if (domain !== undefined && !DOMAIN_RE.test(domain)) throw new UserError(`--cluster-domain must be a DNS domain (like ${DEFAULT_CLUSTER_DOMAIN}), not "${domain}".`, 2);
  return {
    image: imageRef('shadow', str(p, 'image')),
    imagePullSecret: objectName(p, 'image-pull-secret'),
    nodeSelector: keyValues(p, 'node-selector'),
    serviceAccount: objectName(p, 'service-account'),
    resources: { cpuRequest: quantity(p, 'cpu-request'), memoryRequest: quantity(p, 'memory-request'), memoryLimit: quantity(p, 'memory-limit') },
    clusterDomain: domain,
  };
}

export function podTimeoutMs(p: Parsed): number {
  const s = Number(str(p, 'pod-timeout'));
  if (!Number.isFinite(s) || s <= 0) throw new UserError(`--pod-timeout must be a positive number of seconds, not "${str(p, 'pod-timeout')}".`, 2);
  return s * 1000;
}
