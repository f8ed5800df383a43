// kt-exchange's flags, declared apart from exchange.ts so that --help and completion start
// without loading the Kubernetes client.
import { flags, KUBE_FLAGS } from '../cli/cli.ts';
import { MIN_RECOVER_AFTER_MS } from '../cli/duration.ts';
import { PODENV_FLAGS } from '../podenv/flags.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';

export const EXCHANGE_MODES = ['selector', 'scale'] as const;

export const EXCHANGE_FLAGS = flags({
  ...KUBE_FLAGS,
  expose: { type: 'string', description: 'LOCAL[:REMOTE][,...]: REMOTE is a Service port, a target port or a port name (default: LOCAL)' },
  mode: { type: 'string', description: 'selector: point the Service at the shadow; scale: scale the Deployment to 0', choices: EXCHANGE_MODES, default: 'selector' },
  'recycle-pods': { type: 'boolean', description: 'Selector mode: restart the real pods after the switch, so callers with kept-alive (pooled) connections reconnect to this laptop' },
  'recover-after': { type: 'duration', description: 'How long the cluster waits for a vanished laptop before restoring itself', default: '60s', min: MIN_RECOVER_AFTER_MS },
  ...SHADOW_FLAGS,
  ...PODENV_FLAGS,
});
