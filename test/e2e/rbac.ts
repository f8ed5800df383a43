// A kubeconfig bound to the namespace-scoped Role in plugins/rbac/kt-developer.yaml and nothing
// else: proves that the least RBAC the README documents is enough.
import { readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cluster, kubectl } from './cluster.ts';

export function restrictedKubeconfig(namespace: string): string {
  const role = readFileSync('plugins/rbac/kt-developer.yaml', 'utf8').replaceAll('NAMESPACE', namespace);
  kubectl(['apply', '-f', '-'], role);
  kubectl(['create', 'serviceaccount', 'kt-dev', '-n', namespace]);
  kubectl(['create', 'rolebinding', 'kt-dev', '-n', namespace, '--role=kt-developer', `--serviceaccount=${namespace}:kt-dev`]);
  const token = kubectl(['create', 'token', 'kt-dev', '-n', namespace, '--duration=2h']).trim();
  const admin = readFileSync(cluster.kubeconfig, 'utf8');
  const ca = /certificate-authority-data: (\S+)/.exec(admin)![1]!;
  const server = /server: (\S+)/.exec(admin)![1]!;
  const file = join(tmpdir(), `kt-rbac-${namespace}.kubeconfig`);
  writeFileSync(file, [
    'apiVersion: v1', 'kind: Config',
    'clusters:', `- name: local`, '  cluster:', `    server: ${server}`, `    certificate-authority-data: ${ca}`,
    'users:', '- name: kt-dev', '  user:', `    token: ${token}`,
    'contexts:', '- name: kt-dev', '  context:', '    cluster: local', '    user: kt-dev', `    namespace: ${namespace}`,
    'current-context: kt-dev', '',
  ].join('\n'), { mode: 0o600 });
  return file;
}
