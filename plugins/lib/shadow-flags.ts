// Flags every command that deploys a shadow pod shares, and turning them into ShadowOptions.
import { UserError } from './errors.ts';
import { imageRef } from './images.ts';
import { keyValues, str, type FlagSpec, type Parsed } from './cli.ts';
import { DEFAULT_RESOURCES, type ShadowOptions } from './shadow-pod.ts';

export const SHADOW_FLAGS: FlagSpec[] = [
  { name: 'image', type: 'string', description: 'Shadow image (default: $KT_SHADOW_IMAGE, $KT_IMAGE_REGISTRY/kt-shadow:VERSION, or ~/.kt/config.yaml)' },
  { name: 'image-pull-secret', type: 'string', description: 'Secret to pull the shadow image with' },
  { name: 'node-selector', type: 'string', description: 'Node selector for the shadow pod, key=value[,key=value]' },
  { name: 'service-account', type: 'string', description: 'ServiceAccount for the shadow pod' },
  { name: 'cpu-request', type: 'string', description: 'Shadow pod CPU request', default: DEFAULT_RESOURCES.cpuRequest },
  { name: 'memory-request', type: 'string', description: 'Shadow pod memory request', default: DEFAULT_RESOURCES.memoryRequest },
  { name: 'memory-limit', type: 'string', description: 'Shadow pod memory limit', default: DEFAULT_RESOURCES.memoryLimit },
  { name: 'pod-timeout', type: 'string', description: 'How long to wait for the shadow pod to be ready, in seconds', default: '120' },
  { name: 'cluster-domain', type: 'string', description: 'The cluster DNS domain', default: 'cluster.local' },
];

export function shadowOptions(p: Parsed): ShadowOptions {
  return {
    image: imageRef('shadow', str(p, 'image')),
    imagePullSecret: str(p, 'image-pull-secret'),
    nodeSelector: keyValues(p, 'node-selector'),
    serviceAccount: str(p, 'service-account'),
    resources: { cpuRequest: str(p, 'cpu-request')!, memoryRequest: str(p, 'memory-request')!, memoryLimit: str(p, 'memory-limit')! },
    clusterDomain: str(p, 'cluster-domain'),
  };
}

export function podTimeoutMs(p: Parsed): number {
  const s = Number(str(p, 'pod-timeout'));
  if (!Number.isFinite(s) || s <= 0) throw new UserError(`--pod-timeout must be a positive number of seconds, not "${str(p, 'pod-timeout')}".`, 2);
  return s * 1000;
}
