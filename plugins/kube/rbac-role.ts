// The Role kt needs, as plugins/rbac/kt-developer.yaml has it, built into the plugins so that a
// user with only the installed binary can print it for an admin (`kubectl kt-connect rbac`).
// test/unit/rbac-role.test.ts keeps the two identical.
import type { KUBE_FLAGS, Values } from '../cli/cli.ts';
import { kubeOptions, loadKube } from './kubeconfig.ts';

export const DEVELOPER_ROLE_YAML = `# The least RBAC a developer needs to use every kt plugin in one namespace. Bind it with a
# RoleBinding in each namespace a developer works in; nothing cluster-wide is required.
# Replace NAMESPACE.
apiVersion: rbac.authorization.k8s.io/v1
kind: Role
metadata:
  name: kt-developer
  namespace: NAMESPACE
rules:
# The shadow pod: create it, watch it start, beat its heartbeat, delete it (kt-clean too).
- apiGroups: [""]
  resources: [pods]
  verbs: [create, get, list, watch, patch, delete]
# The one tunnel into the shadow (get: kt opens it as a WebSocket, which is an HTTP GET; create:
# the same for SPDY clients such as kubectl port-forward).
- apiGroups: [""]
  resources: [pods/portforward]
  verbs: [get, create]
# The per-session Secret holding the session's public key and the shadow's host key (patch:
# made owned by the shadow pod, which is created after it, so it goes with the pod).
- apiGroups: [""]
  resources: [secrets]
  verbs: [create, patch, delete]
# --env-file, --mount and -- COMMAND: the Secrets the workload's container references, read by
# name (watch: --mount keeps its files in step). Without them kt says so in one sentence, or goes
# on without the pod's environment with --env-optional.
- apiGroups: [""]
  resources: [secrets]
  verbs: [get, watch]
# Why a shadow does not start.
- apiGroups: [""]
  resources: [events]
  verbs: [list]
# Services: listed for the banner and hosts mode; created by kt-preview and kt-mesh (and as a
# dry run by transparent mode's service-range probe); patched by kt-exchange and kt-mesh.
- apiGroups: [""]
  resources: [services]
  verbs: [get, list, create, patch, delete]
# kt-exchange --mode scale (get, list, patch); kt-mesh's router Deployment (create; delete in
# the foreground, so the last developer out lets it drain before the rest goes).
- apiGroups: [apps]
  resources: [deployments]
  verbs: [get, list, create, patch, delete]
# kt-mesh: the last developer out waits until the Service's endpoints left the router;
# kt-exchange waits until they list the shadow before saying ready, and the real pods on exit.
- apiGroups: [discovery.k8s.io]
  resources: [endpointslices]
  verbs: [list]
# Self-healing: a ServiceAccount, Role and RoleBinding per shadow pod, limited to the objects of
# that session, so the cluster restores itself when a laptop disappears. Without these rules kt
# still works, warns that self-healing is off, and kt-clean is the way back.
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create, patch, delete]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [create, patch, delete]
# kt-mesh: the route table (list and watch: the router's own account watches it, and a Role can
# only grant what its creator holds); --env-file and --mount: the ConfigMaps the workload references.
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, list, watch, create, patch, delete]
`;

/** The Role for one namespace, and how to bind it. */
export function developerRole(namespace: string): string {
  return `${DEVELOPER_ROLE_YAML.replaceAll('NAMESPACE', namespace)}# Bind it to a user (or --group, --serviceaccount):
#   kubectl create rolebinding kt-developer -n ${namespace} --role=kt-developer --user=NAME
`;
}

/** `kubectl kt-connect rbac`: the namespace from -n, else the context's; no cluster access needed. */
export function runPrintRole(o: Values<typeof KUBE_FLAGS>): Promise<number> {
  const namespace = o.namespace ?? loadKube({ ...kubeOptions(o), namespace: undefined }).namespace;
  process.stdout.write(developerRole(namespace));
  return Promise.resolve(0);
}
