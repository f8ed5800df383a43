// kubectl kt-status: every kt session in the namespace, or in all of them.
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { STATUS_FLAGS } from '../housekeeping/flags.ts';

export const spec = command({
  name: 'kt-status',
  summary: 'List kt sessions: kind, target, user, age, last heartbeat (by the cluster clock) and state',
  usage: 'kubectl kt-status [-A] [-o json|yaml|wide|name] [--no-headers]',
  flags: STATUS_FLAGS,
  // Imported when it runs: --help and completion start without the Kubernetes client.
  run: async (o) => (await import('../housekeeping/status.ts')).runStatus(o),
});

void main(spec);
