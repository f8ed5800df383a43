// Flags every command that deploys a shadow pod shares, and turning them into ShadowOptions.
import { UserError } from '../cli/errors.ts';
import { imageRef } from '../cli/images.ts';
import { flags, keyValues, type Values } from '../cli/cli.ts';
import type { ShadowOptions } from './shadow-pod.ts';
import { DEFAULT_CLUSTER_DOMAIN } from '../../contract/index.ts';

// Kept free of the Kubernetes client, so that --help and completion start without loading it.
export const DEFAULT_RESOURCES = { cpuRequest: '50m', memoryRequest: '64Mi', memoryLimit: '256Mi' };

export const SHADOW_FLAGS = flags({
  image: { type: 'string', description: 'Shadow image (default: $KT_SHADOW_IMAGE, $KT_IMAGE_REGISTRY/kt-shadow:VERSION, or ~/.kt/config.yaml)' },
  'image-pull-secret': { type: 'string', description: 'Secret to pull the shadow image with' },
  'node-selector': { type: 'list', description: 'Node selector for the shadow pod, key=value[,key=value]' },
  'service-account': { type: 'string', description: 'ServiceAccount for the shadow pod' },
  'cpu-request': { type: 'string', description: 'Shadow pod CPU request', default: DEFAULT_RESOURCES.cpuRequest },
  'memory-request': { type: 'string', description: 'Shadow pod memory request', default: DEFAULT_RESOURCES.memoryRequest },
  'memory-limit': { type: 'string', description: 'Shadow pod memory limit', default: DEFAULT_RESOURCES.memoryLimit },
  'pod-timeout': { type: 'duration', description: 'How long to wait for the shadow pod to be ready (90s, 5m; a plain number is seconds)', default: '120', min: 1000 },
  'cluster-domain': { type: 'string', description: 'The cluster DNS domain', default: DEFAULT_CLUSTER_DOMAIN },
});

// Kubernetes' own forms, so a bad value is refused here rather than by the API server after the
// session has begun creating things.
const QUANTITY_RE = /^(\d+(\.\d*)?|\.\d+)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei|e\d+)?$/;
const NAME_RE = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;
const DOMAIN_RE = /^([a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)(\.[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?)*$/;

function quantity(name: string, v: string): string {
  if (!QUANTITY_RE.test(v)) throw new UserError(`--${name} must be a Kubernetes quantity (like 100m, 64Mi or 1Gi), not "${v}".`, 2);
  return v;
}

function objectName(name: string, v: string | undefined): string | undefined {
  if (v !== undefined && !NAME_RE.test(v)) throw new UserError(`--${name} must name a Kubernetes object (lower case letters, digits, '-' and '.'), not "${v}".`, 2);
  return v;
}

export function shadowOptions(o: Values<typeof SHADOW_FLAGS>): ShadowOptions {
  const domain = o.clusterDomain;
  if (!DOMAIN_RE.test(domain)) throw new UserError(`--cluster-domain must be a DNS domain (like ${DEFAULT_CLUSTER_DOMAIN}), not "${domain}".`, 2);
  return {
    image: imageRef('shadow', o.image),
    imagePullSecret: objectName('image-pull-secret', o.imagePullSecret),
    nodeSelector: keyValues('node-selector', o.nodeSelector),
    serviceAccount: objectName('service-account', o.serviceAccount),
    resources: { cpuRequest: quantity('cpu-request', o.cpuRequest), memoryRequest: quantity('memory-request', o.memoryRequest), memoryLimit: quantity('memory-limit', o.memoryLimit) },
    clusterDomain: domain,
  };
}
