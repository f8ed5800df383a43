// kubectl kt-preview: publish a local process as a new Service of the cluster.
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { PREVIEW_FLAGS } from '../preview/flags.ts';

export const spec = command({
  name: 'kt-preview',
  // A new name: nothing to complete.
  positionals: [{ name: 'NAME' }],
  summary: 'Publish a process on this laptop as a new Service of the cluster; removed on exit, and by the cluster itself if this laptop disappears',
  usage: 'kubectl kt-preview NAME --expose LOCAL[:REMOTE][,...] [--type ClusterIP|NodePort|LoadBalancer] [--env-from deployment/NAME --env-file PATH --mount DIR] [-- COMMAND [ARGS...]]',
  examples: ['kubectl kt-preview my-api --expose 8080          # my-api.<ns>:8080 -> localhost:8080', 'kubectl kt-preview my-api --expose 3000:80 --type NodePort'],
  flags: PREVIEW_FLAGS,
  // Imported when it runs: --help and completion start without the Kubernetes client.
  run: async (o) => (await import('../preview/preview.ts')).runPreview(o),
});

void main(spec);
