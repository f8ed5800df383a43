// kubectl kt-clean: remove what crashed or abandoned kt sessions left behind.
import { CLEAN_FLAGS } from '../housekeeping/flags.ts';
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';

export const spec = command({
  name: 'kt-clean',
  summary: 'Remove what stale or orphaned kt sessions left, in the cluster and on this machine; live sessions are never touched',
  usage: 'kubectl kt-clean [--dry-run] [--older-than DURATION] [-A]',
  examples: ['kubectl kt-clean --dry-run', 'kubectl kt-clean --older-than 10m -A'],
  flags: CLEAN_FLAGS,
  // Imported when it runs: --help and completion start without the Kubernetes client.
  run: async (o) => (await import('../housekeeping/clean.ts')).runClean(o),
});

void main(spec);
