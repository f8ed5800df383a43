// kubectl kt-clean: remove what crashed or abandoned kt sessions left behind.
import { runClean } from '../housekeeping/clean.ts';
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';

export const spec: CommandSpec = {
  name: 'kt-clean',
  summary: 'Remove what stale or orphaned kt sessions left, in the cluster and on this machine; live sessions are never touched',
  usage: 'kubectl kt-clean [--dry-run] [--older-than DURATION] [-A]',
  examples: ['kubectl kt-clean --dry-run', 'kubectl kt-clean --older-than 10m -A'],
  flags: [
    ...KUBE_FLAGS,
    { name: 'all-namespaces', short: 'A', type: 'boolean', description: 'Clean sessions in every namespace' },
    { name: 'dry-run', type: 'boolean', description: 'Only list what would be done' },
    { name: 'older-than', type: 'string', description: 'Treat sessions whose heartbeat is older than this as stale (default 3m)' },
  ],
  run: runClean,
};

void main(spec);
