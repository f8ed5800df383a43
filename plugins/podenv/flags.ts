// The pod-environment flags of kt-exchange, kt-mesh, kt-preview and kt-connect, declared apart
// from podenv.ts so that --help and completion start without loading the Kubernetes client.
import { flags } from '../cli/cli.ts';
import { ENV_FORMATS } from './env-file.ts';

export const PODENV_FLAGS = flags({
  'env-file': { type: 'string', description: "Write the workload container's environment to this file (0600; removed on exit unless --keep-env-file)", complete: 'file' },
  'env-format': { type: 'string', description: 'Format of --env-file', choices: ENV_FORMATS, default: 'dotenv' },
  'keep-env-file': { type: 'boolean', description: 'Leave --env-file in place on exit' },
  mount: { type: 'string', description: "Put the container's ConfigMap, Secret, projected and downwardAPI volumes under this directory, at their mount paths (kept in step; removed on exit)", complete: 'file' },
  container: { type: 'string', description: "The workload's container whose environment and volumes to bring (default: the one the Service targets, else the first)" },
  'env-optional': { type: 'boolean', description: 'Go on without the environment and files when they cannot be read' },
});

export const ENV_FROM_FLAGS = flags({
  'env-from': { type: 'string', description: 'deployment/NAME or pod/NAME: the workload whose environment --env-file, --mount and -- COMMAND bring', complete: 'workload' },
});
