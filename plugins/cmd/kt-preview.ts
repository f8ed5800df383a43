// kubectl kt-preview: publish a local process as a new Service of the cluster.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { runPreview, SERVICE_TYPES } from '../preview/preview.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';
import { ENV_FROM_FLAG, PODENV_FLAGS } from '../podenv/podenv.ts';

export const spec: CommandSpec = {
  name: 'kt-preview',
  positionals: 1,
  summary: 'Publish a process on this laptop as a new Service of the cluster; removed on exit, and by the cluster itself if this laptop disappears',
  usage: 'kubectl kt-preview NAME --expose LOCAL[:REMOTE][,...] [--type ClusterIP|NodePort|LoadBalancer] [--env-from deployment/NAME --env-file PATH --mount DIR] [-- COMMAND [ARGS...]]',
  examples: ['kubectl kt-preview my-api --expose 8080          # my-api.<ns>:8080 -> localhost:8080', 'kubectl kt-preview my-api --expose 3000:80 --type NodePort'],
  flags: [
    ...KUBE_FLAGS,
    { name: 'expose', type: 'string', description: 'LOCAL[:REMOTE][,...]: the Service listens on REMOTE (default LOCAL)' },
    { name: 'type', type: 'string', description: 'Service type', choices: SERVICE_TYPES, default: 'ClusterIP' },
    { name: 'recover-after', type: 'string', description: 'How long the cluster waits for a vanished laptop before removing the Service', default: '60s' },
    ...SHADOW_FLAGS,
    ENV_FROM_FLAG,
    ...PODENV_FLAGS,
  ],
  run: runPreview,
};

void main(spec);
