// kubectl kt-status: every kt session in the namespace, or in all of them.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { runStatus } from '../housekeeping/status.ts';
import { OUTPUT_FORMATS } from '../housekeeping/schema.ts';

export const spec: CommandSpec = {
  name: 'kt-status',
  summary: 'List kt sessions: kind, target, user, age, last heartbeat (by the cluster clock) and state',
  usage: 'kubectl kt-status [-A] [-o json|yaml|wide|name] [--no-headers]',
  flags: [
    ...KUBE_FLAGS,
    { name: 'all-namespaces', short: 'A', type: 'boolean', description: 'List sessions in every namespace' },
    { name: 'output', short: 'o', type: 'string', description: 'Output format: a SessionList (apiVersion kt.dev/v1) as json or yaml, session names, or a wider table', choices: OUTPUT_FORMATS },
    { name: 'no-headers', type: 'boolean', description: 'Print tables without their header line' },
  ],
  run: runStatus,
};

void main(spec);
