// The in-cluster end of the throughput benchmarks: a pod (restricted-compliant, on the test echo
// image) running bulk-server.js, which sends or swallows bytes on BULK_PORT.
import { readFileSync } from 'node:fs';
import { cluster, kubectl } from '../../test/e2e/cluster.ts';

export const BULK_PORT = 7071;

/** Starts pod/bulk in `namespace`, waits for it to be Ready and returns its IP. */
export function deployBulkPod(namespace: string): string {
  kubectl(['wait', '--for=jsonpath={.status.phase}=Active', `namespace/${namespace}`]);
  const script = readFileSync('bench/tools/bulk-server.js', 'utf8');
  kubectl(['apply', '-f', '-'], JSON.stringify({
    apiVersion: 'v1', kind: 'Pod', metadata: { name: 'bulk', namespace, labels: { app: 'bulk' } },
    spec: {
      automountServiceAccountToken: false, terminationGracePeriodSeconds: 1,
      securityContext: { runAsNonRoot: true, runAsUser: 1000, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [{
        name: 'bulk', image: cluster.echoImage, imagePullPolicy: 'Never', command: ['node', '-e', script, String(BULK_PORT)],
        ports: [{ containerPort: BULK_PORT }], readinessProbe: { tcpSocket: { port: BULK_PORT }, periodSeconds: 1 },
        securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
      }],
    },
  }));
  kubectl(['wait', '--for=condition=Ready', 'pod/bulk', '-n', namespace, '--timeout=120s']);
  return kubectl(['get', 'pod', 'bulk', '-n', namespace, '-o', 'jsonpath={.status.podIP}']);
}
