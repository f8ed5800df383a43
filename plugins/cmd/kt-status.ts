// kubectl kt-status: every kt session in the namespace, or in all of them.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { runStatus } from '../housekeeping/status.ts';

export const spec: CommandSpec = {
  name: 'kt-status',
  summary: 'List kt sessions: kind, target, user, age, last heartbeat (by the cluster clock) and state',
  usage: 'kubectl kt-status [-A] [-o wide|json]',
  flags: [
    ...KUBE_FLAGS,
    { name: 'all-namespaces', short: 'A', type: 'boolean', description: 'List sessions in every namespace' },
    { name: 'output', short: 'o', type: 'string', description: 'Output format', choices: ['text', 'wide', 'json'], default: 'text' },
  ],
  run: runStatus,
};

void main(spec);
