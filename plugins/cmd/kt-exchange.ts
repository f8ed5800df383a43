// kubectl kt-exchange: all traffic of a Service goes to ports on this laptop.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { EXCHANGE_MODES, runExchange } from '../exchange/exchange.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';
import { PODENV_FLAGS } from '../podenv/podenv.ts';

export const spec: CommandSpec = {
  name: 'kt-exchange',
  positionals: 1,
  summary: 'Send all traffic of a Service to ports on this laptop; restored on exit, and by the cluster itself if this laptop disappears',
  usage: 'kubectl kt-exchange SERVICE|deployment/NAME --expose LOCAL[:REMOTE][,...] [--mode selector|scale] [--env-file PATH] [--mount DIR] [-- COMMAND [ARGS...]]',
  examples: [
    'kubectl kt-exchange echo --expose 8080            # the Service port 8080 (or target port) to localhost:8080',
    'kubectl kt-exchange echo --expose 8080:80,9090:grpc',
    'kubectl kt-exchange deployment/echo --mode scale --expose 8080',
  ],
  flags: [
    ...KUBE_FLAGS,
    { name: 'expose', type: 'string', description: 'LOCAL[:REMOTE][,...]: REMOTE is a Service port, a target port or a port name (default: LOCAL)' },
    { name: 'mode', type: 'string', description: 'selector: point the Service at the shadow; scale: scale the Deployment to 0', choices: EXCHANGE_MODES, default: 'selector' },
    { name: 'recycle-pods', type: 'boolean', description: 'Selector mode: restart the real pods after the switch, so callers with kept-alive (pooled) connections reconnect to this laptop' },
    { name: 'recover-after', type: 'string', description: 'How long the cluster waits for a vanished laptop before restoring itself', default: '60s' },
    ...SHADOW_FLAGS,
    ...PODENV_FLAGS,
  ],
  run: runExchange,
};

void main(spec);
