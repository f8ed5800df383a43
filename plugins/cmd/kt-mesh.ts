// kubectl kt-mesh: requests with this developer's version mark go to this laptop; all others to the real pods.
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { MESH_FLAGS } from '../mesh/flags.ts';

export const spec = command({
  name: 'kt-mesh',
  positionals: [{ name: 'SERVICE', complete: 'service' }],
  summary: 'Route only requests that carry your version mark (a header, or the same key in OpenTelemetry baggage) to this laptop; several developers at once',
  usage: 'kubectl kt-mesh SERVICE --expose LOCAL[:REMOTE][,...] [--version-mark [KEY:]VALUE] [--mode auto|manual] [--env-file PATH] [--mount DIR] [-- COMMAND [ARGS...]]',
  examples: [
    'kubectl kt-mesh echo --expose 8080:80                       # prints the random mark it picked',
    'kubectl kt-mesh echo --expose 8080:80 --version-mark alice    # header kt-version: alice',
    'kubectl kt-mesh echo --expose 8080:80 --version-mark x-dev:alice',
  ],
  flags: MESH_FLAGS,
  // Imported when it runs: --help and completion start without the Kubernetes client.
  run: async (o) => (await import('../mesh/mesh.ts')).runMesh(o),
});

void main(spec);
