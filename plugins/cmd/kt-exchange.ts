// kubectl kt-exchange: all traffic of a Service goes to ports on this laptop.
import { command } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { EXCHANGE_FLAGS } from '../exchange/flags.ts';

export const spec = command({
  name: 'kt-exchange',
  positionals: [{ name: 'SERVICE', complete: 'service-or-deployment' }],
  summary: 'Send all traffic of a Service to ports on this laptop; restored on exit, and by the cluster itself if this laptop disappears',
  usage: 'kubectl kt-exchange SERVICE|deployment/NAME --expose LOCAL[:REMOTE][,...] [--mode selector|scale] [--env-file PATH] [--mount DIR] [-- COMMAND [ARGS...]]',
  examples: [
    'kubectl kt-exchange echo --expose 8080            # the Service port 8080 (or target port) to localhost:8080',
    'kubectl kt-exchange echo --expose 8080:80,9090:grpc',
    'kubectl kt-exchange deployment/echo --mode scale --expose 8080',
  ],
  flags: EXCHANGE_FLAGS,
  // Imported when it runs: --help and completion start without the Kubernetes client.
  run: async (o) => (await import('../exchange/exchange.ts')).runExchange(o),
});

void main(spec);
