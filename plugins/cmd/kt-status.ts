// kubectl kt-status: every kt session in the namespace, or in all of them.
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { runStatus, STATUS_FLAGS } from '../housekeeping/status.ts';

export const spec = command({
  name: 'kt-status',
  summary: 'List kt sessions: kind, target, user, age, last heartbeat (by the cluster clock) and state',
  usage: 'kubectl kt-status [-A] [-o json|yaml|wide|name] [--no-headers]',
  flags: STATUS_FLAGS,
  run: runStatus,
});

void main(spec);
