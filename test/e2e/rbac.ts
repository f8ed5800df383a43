// A kubeconfig bound to the namespace-scoped Role in plugins/rbac/kt-developer.yaml and nothing
// else: proves that the least RBAC the README documents is enough.
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cluster, kubectl } from './cluster.ts';

/**
 * A kubeconfig for a ServiceAccount bound to the documented Role; `edit` may change the Role's
 * YAML first (to take a permission away, say).
 */
export function restrictedKubeconfig(namespace: string, edit: (roleYaml: string) => string = (y) => y, sa = 'kt-dev'): string {
  const role = edit(readFileSync('plugins/rbac/kt-developer.yaml', 'utf8').replaceAll('NAMESPACE', namespace)).replace('name: kt-developer', `name: ${sa}`);
  kubectl(['apply', '-f', '-'], role);
  kubectl(['create', 'serviceaccount', sa, '-n', namespace]);
  kubectl(['create', 'rolebinding', sa, '-n', namespace, `--role=${sa}`, `--serviceaccount=${namespace}:${sa}`]);
  const token = kubectl(['create', 'token', sa, '-n', namespace, '--duration=2h']).trim();
  const admin = readFileSync(cluster.kubeconfig, 'utf8');
  const ca = /certificate-authority-data: (\S+)/.exec(admin)![1]!;
  const server = /server: (\S+)/.exec(admin)![1]!;
  const file = join(tmpdir(), `kt-rbac-${namespace}-${sa}.kubeconfig`);
  writeFileSync(file, [
    'apiVersion: v1', 'kind: Config',
    'clusters:', `- name: local`, '  cluster:', `    server: ${server}`, `    certificate-authority-data: ${ca}`,
    'users:', `- name: ${sa}`, '  user:', `    token: ${token}`,
    'contexts:', '- name: kt-dev', '  context:', '    cluster: local', `    user: ${sa}`, `    namespace: ${namespace}`,
    'current-context: kt-dev', '',
  ].join('\n'), { mode: 0o600 });
  return file;
}

/** Binds the documented Role in another namespace to the same ServiceAccount (a user of two namespaces). */
export function bindRoleIn(namespace: string, saNamespace: string, sa = 'kt-dev'): void {
  kubectl(['apply', '-f', '-'], readFileSync('plugins/rbac/kt-developer.yaml', 'utf8').replaceAll('NAMESPACE', namespace));
  kubectl(['create', 'rolebinding', sa, '-n', namespace, '--role=kt-developer', `--serviceaccount=${saNamespace}:${sa}`]);
}
