// kt-dashboard's flags, declared apart from dashboard.ts so that --help and completion start
// without loading the Kubernetes client.
import { flags, KUBE_FLAGS } from '../cli/cli.ts';

export const DASHBOARD_FLAGS = flags({
  ...KUBE_FLAGS,
  'all-namespaces': { type: 'boolean', short: 'A', description: 'Show every namespace (needs the right to list Services cluster-wide)' },
  port: { type: 'string', description: 'Local port to serve on (0: any free one)', default: '0' },
  address: { type: 'string', description: 'Address to serve on; anything but loopback lets others with the URL in', default: '127.0.0.1' },
  open: { type: 'boolean', description: 'Open the page in the default browser' },
  output: { type: 'string', short: 'o', description: 'Print the model once (apiVersion kt.dev/v1, kind Dashboard) instead of serving it', choices: ['json', 'yaml'] },
});
