// kubectl kt-dashboard: the kt state of a namespace in a browser, live.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { runDashboard } from '../dashboard/dashboard.ts';

export const spec: CommandSpec = {
  name: 'kt-dashboard',
  summary: 'Show, live in a browser, which Services are exchanged, meshed or previewed by whom, the pods serving each, and stale sessions to clean',
  usage: 'kubectl kt-dashboard [-n NAMESPACE | -A] [--port N] [--address 127.0.0.1] [--open] [-o json|yaml]',
  examples: ['kubectl kt-dashboard -n dev --open', 'kubectl kt-dashboard -n dev -o json   # the same model once, for scripts'],
  flags: [
    ...KUBE_FLAGS,
    { name: 'all-namespaces', short: 'A', type: 'boolean', description: 'Show every namespace (needs the right to list Services cluster-wide)' },
    { name: 'port', type: 'string', description: 'Local port to serve on (0: any free one)', default: '0' },
    { name: 'address', type: 'string', description: 'Address to serve on; anything but loopback lets others with the URL in', default: '127.0.0.1' },
    { name: 'open', type: 'boolean', description: 'Open the page in the default browser' },
    { name: 'output', short: 'o', type: 'string', description: 'Print the model once (apiVersion kt.dev/v1, kind Dashboard) instead of serving it', choices: ['json', 'yaml'] },
  ],
  run: runDashboard,
};

void main(spec);
