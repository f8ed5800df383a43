// kubectl kt-connect: reach cluster Services, ClusterIPs and pod IPs from the laptop.
import { KUBE_FLAGS, type CommandSpec } from '../cli/cli.ts';
import { main } from '../cli/main.ts';
import { CONNECT_MODES, runConnect } from '../connect/connect.ts';
import { runConnectStatus } from '../connect/status.ts';
import { OUTPUT_FORMATS } from '../housekeeping/schema.ts';
import { runPrintRole } from '../kube/rbac-role.ts';
import { SHADOW_FLAGS } from '../session/shadow-flags.ts';
import { ENV_FROM_FLAG, PODENV_FLAGS } from '../podenv/podenv.ts';
import { defaultHostsFile } from '../connect/hosts/windows.ts';

const status: CommandSpec = {
  name: 'status',
  summary: 'Show whether a kt-connect session is up on this machine, and how healthy it is',
  usage: 'kubectl kt-connect status [-o json|yaml|wide|name] [--no-headers]',
  flags: [
    ...KUBE_FLAGS,
    { name: 'output', short: 'o', type: 'string', description: 'Output format: a SessionList (apiVersion kt.dev/v1) as json or yaml, session names, or a table', choices: OUTPUT_FORMATS },
    { name: 'no-headers', type: 'boolean', description: 'Print tables without their header line' },
  ],
  run: runConnectStatus,
};

const rbac: CommandSpec = {
  name: 'rbac',
  summary: 'Print the Role kt needs in a namespace (for an admin to apply and bind); nothing cluster-wide is needed',
  usage: 'kubectl kt-connect rbac [-n NAMESPACE] | kubectl apply -f -',
  flags: [...KUBE_FLAGS],
  run: runPrintRole,
};

export const spec: CommandSpec = {
  name: 'kt-connect',
  summary: 'Reach cluster Services by name, ClusterIPs and pod IPs from this machine, through a shadow pod',
  usage: 'kubectl kt-connect [--mode socks|transparent|hosts] [flags] [-- command [args...]]',
  examples: [
    'kubectl kt-connect -n dev                      # SOCKS5/HTTP proxy on 127.0.0.1:2223',
    'kubectl kt-connect -- curl http://echo.dev/     # run one command through the proxy',
    'sudo kubectl kt-connect --mode transparent     # every program, no proxy settings (Linux)',
  ],
  flags: [
    ...KUBE_FLAGS,
    { name: 'mode', type: 'string', description: 'How the laptop reaches the cluster (default: transparent as root on Linux, else socks)', choices: CONNECT_MODES },
    { name: 'proxy-port', type: 'string', description: 'Local port of the SOCKS5/HTTP proxy (socks mode)', default: '2223' },
    { name: 'include-cidr', type: 'string', multiple: true, description: 'Extra address ranges to route to the cluster (transparent mode)' },
    { name: 'exclude-cidr', type: 'string', multiple: true, description: 'Address ranges never to route to the cluster (transparent mode)' },
    { name: 'dns-port', type: 'string', description: 'Port of the local DNS server (transparent mode)', default: '53' },
    { name: 'namespaces', type: 'string', multiple: true, description: 'Hosts and transparent mode: more namespaces whose Services get short names (svc.ns), for a user who may not list namespaces (a,b)', complete: 'namespace' },
    { name: 'hosts-file', type: 'string', description: 'The hosts file to edit (hosts mode)', default: defaultHostsFile() },
    { name: 'quiet', short: 'q', type: 'boolean', description: 'Print only errors and the banner' },
    ...SHADOW_FLAGS,
    ENV_FROM_FLAG,
    ...PODENV_FLAGS,
  ],
  subcommands: [status, rbac],
  run: runConnect,
};

void main(spec);
