// kubectl kt-mesh: requests with this developer's version mark go to this laptop; all others to the real pods.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { MESH_MODES, runMesh } from '../mesh/mesh.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';
import { PODENV_FLAGS } from '../podenv/podenv.ts';

export const spec: CommandSpec = {
  name: 'kt-mesh',
  positionals: 1,
  summary: 'Route only requests that carry your version mark (a header, or the same key in OpenTelemetry baggage) to this laptop; several developers at once',
  usage: 'kubectl kt-mesh SERVICE --expose LOCAL[:REMOTE][,...] [--version-mark [KEY:]VALUE] [--mode auto|manual] [--env-file PATH] [--mount DIR] [-- COMMAND [ARGS...]]',
  examples: [
    'kubectl kt-mesh echo --expose 8080:80                       # prints the random mark it picked',
    'kubectl kt-mesh echo --expose 8080:80 --version-mark alice    # header kt-version: alice',
    'kubectl kt-mesh echo --expose 8080:80 --version-mark x-dev:alice',
  ],
  flags: [
    ...KUBE_FLAGS,
    { name: 'expose', type: 'string', description: 'LOCAL[:REMOTE][,...]: REMOTE is an HTTP Service port, target port or port name (default: LOCAL)' },
    { name: 'version-mark', type: 'string', description: '[KEY:]VALUE: the header (default key kt-version) whose value selects this laptop (default: a random value)' },
    { name: 'mode', type: 'string', description: 'auto: kt routes with its router; manual: only add a labelled pod for Istio rules', choices: MESH_MODES, default: 'auto' },
    { name: 'router-image', type: 'string', description: 'Router image (default: $KT_ROUTER_IMAGE, $KT_IMAGE_REGISTRY/kt-router:VERSION, or ~/.kt/config.yaml)' },
    { name: 'recover-after', type: 'string', description: 'How long the cluster waits for a vanished laptop before dropping its route', default: '60s' },
    ...SHADOW_FLAGS,
    ...PODENV_FLAGS,
  ],
  run: runMesh,
};

void main(spec);
