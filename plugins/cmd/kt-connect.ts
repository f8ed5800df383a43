// kubectl kt-connect: reach cluster Services, ClusterIPs and pod IPs from the laptop.
// Only the flag declarations load at start; what runs a command is imported when it runs, so
// --help and completion (run at every TAB) do not load the Kubernetes client.
import { command, KUBE_FLAGS } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { CONNECT_ALL_FLAGS } from '../connect/flags.ts';
import { CONNECT_STATUS_FLAGS } from '../housekeeping/flags.ts';

const status = command({
  name: 'status',
  summary: 'Show whether a kt-connect session is up on this machine, and how healthy it is',
  usage: 'kubectl kt-connect status [-o json|yaml|wide|name] [--no-headers]',
  flags: CONNECT_STATUS_FLAGS,
  run: async (o) => (await import('../connect/status.ts')).runConnectStatus(o),
});

const rbac = command({
  name: 'rbac',
  summary: 'Print the Role kt needs in a namespace (for an admin to apply and bind); nothing cluster-wide is needed',
  usage: 'kubectl kt-connect rbac [-n NAMESPACE] | kubectl apply -f -',
  flags: KUBE_FLAGS,
  run: async (o) => (await import('../kube/rbac-role.ts')).runPrintRole(o),
});

export const spec = command({
  name: 'kt-connect',
  summary: 'Reach cluster Services by name, ClusterIPs and pod IPs from this machine, through a shadow pod',
  usage: 'kubectl kt-connect [--mode socks|transparent|hosts] [flags] [-- command [args...]]',
  examples: [
    'kubectl kt-connect -n dev                      # SOCKS5/HTTP proxy on 127.0.0.1:2223',
    'kubectl kt-connect -- curl http://echo.dev/     # run one command through the proxy',
    'sudo kubectl kt-connect --mode transparent     # every program, no proxy settings (Linux)',
  ],
  flags: CONNECT_ALL_FLAGS,
  subcommands: [status, rbac],
  run: async (o) => (await import('../connect/connect.ts')).runConnect(o),
});

void main(spec);
