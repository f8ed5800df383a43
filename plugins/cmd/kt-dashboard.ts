// kubectl kt-dashboard: the kt state of a namespace in a browser, live.
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { DASHBOARD_FLAGS } from '../dashboard/flags.ts';

export const spec = command({
  name: 'kt-dashboard',
  summary: 'Show, live in a browser, which Services are exchanged, meshed or previewed by whom, the pods serving each, and stale sessions to clean',
  usage: 'kubectl kt-dashboard [-n NAMESPACE | -A] [--port N] [--address 127.0.0.1] [--open] [-o json|yaml]',
  examples: ['kubectl kt-dashboard -n dev --open', 'kubectl kt-dashboard -n dev -o json   # the same model once, for scripts'],
  flags: DASHBOARD_FLAGS,
  // Imported when it runs: --help and completion start without the Kubernetes client.
  run: async (o) => (await import('../dashboard/dashboard.ts')).runDashboard(o),
});

void main(spec);
