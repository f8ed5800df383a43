// kt-mesh's flags, declared apart from mesh.ts so that --help and completion start without
// loading the Kubernetes client.
import { flags, KUBE_FLAGS } from '../cli/cli.ts';
import { MIN_RECOVER_AFTER_MS } from '../cli/duration.ts';
import { PODENV_FLAGS } from '../podenv/flags.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';

export const MESH_MODES = ['auto', 'manual'] as const;

export const MESH_FLAGS = flags({
  ...KUBE_FLAGS,
  expose: { type: 'string', description: 'LOCAL[:REMOTE][,...]: REMOTE is an HTTP Service port, target port or port name (default: LOCAL)' },
  'version-mark': { type: 'string', description: '[KEY:]VALUE: the header (default key kt-version) whose value selects this laptop (default: a random value)' },
  mode: { type: 'string', description: 'auto: kt routes with its router; manual: only add a labelled pod for Istio rules', choices: MESH_MODES, default: 'auto' },
  'router-image': { type: 'string', description: 'Router image (default: $KT_ROUTER_IMAGE, $KT_IMAGE_REGISTRY/kt-router:VERSION, or ~/.kt/config.yaml)' },
  'recover-after': { type: 'duration', description: 'How long the cluster waits for a vanished laptop before dropping its route', default: '60s', min: MIN_RECOVER_AFTER_MS },
  ...SHADOW_FLAGS,
  ...PODENV_FLAGS,
});
