// kt-preview's flags, declared apart from preview.ts so that --help and completion start without
// loading the Kubernetes client.
import { flags, KUBE_FLAGS } from '../cli/cli.ts';
import { MIN_RECOVER_AFTER_MS } from '../cli/duration.ts';
import { ENV_FROM_FLAGS, PODENV_FLAGS } from '../podenv/flags.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';

export const SERVICE_TYPES = ['ClusterIP', 'NodePort', 'LoadBalancer'] as const;

export const PREVIEW_FLAGS = flags({
  ...KUBE_FLAGS,
  expose: { type: 'string', description: 'LOCAL[:REMOTE][,...]: the Service listens on REMOTE (default LOCAL)' },
  type: { type: 'string', description: 'Service type', choices: SERVICE_TYPES, default: 'ClusterIP' },
  'recover-after': { type: 'duration', description: 'How long the cluster waits for a vanished laptop before removing the Service', default: '60s', min: MIN_RECOVER_AFTER_MS },
  ...SHADOW_FLAGS,
  ...ENV_FROM_FLAGS,
  ...PODENV_FLAGS,
});
