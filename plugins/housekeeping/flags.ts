// kt-status', kt-clean's and kt-connect status' flags, declared apart from the modules that run
// them so that --help and completion start without loading the Kubernetes client.
import { flags, KUBE_FLAGS } from '../cli/cli.ts';

export const OUTPUT_FORMATS = ['json', 'yaml', 'wide', 'name'] as const;

/** -o and --no-headers, as kubectl get has them. */
export const OUTPUT_FLAGS = flags({
  output: { type: 'string', short: 'o', description: 'Output format: a SessionList (apiVersion kt.dev/v1) as json or yaml, session names, or a wider table', choices: OUTPUT_FORMATS },
  'no-headers': { type: 'boolean', description: 'Print tables without their header line' },
});

export const STATUS_FLAGS = flags({
  ...KUBE_FLAGS,
  'all-namespaces': { type: 'boolean', short: 'A', description: 'List sessions in every namespace' },
  ...OUTPUT_FLAGS,
});

export const CLEAN_FLAGS = flags({
  ...KUBE_FLAGS,
  'all-namespaces': { type: 'boolean', short: 'A', description: 'Clean sessions in every namespace' },
  'dry-run': { type: 'boolean', description: 'Only list what would be done' },
  'older-than': { type: 'duration', description: 'Treat sessions whose heartbeat is older than this as stale (default 3m)' },
});

/** kt-connect status: this machine's sessions. */
export const CONNECT_STATUS_FLAGS = flags({ ...KUBE_FLAGS, ...OUTPUT_FLAGS });
