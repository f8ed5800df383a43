#!/usr/bin/env bash
# Reports each component of the local cluster and the node; exit 0 only when all are up.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"
up=0; total=0
for c in etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns; do
  total=$((total + 1))
  if is_running "$c"; then
    up=$((up + 1))
    rss=$(ps -o rss= -p "$(cat "$(pidfile "$c")")" | awk '{printf "%d MiB", $1/1024}')
    printf '  %-24s running (pid %s, %s)\n' "$c" "$(cat "$(pidfile "$c")")" "$rss"
  else
    printf '  %-24s stopped\n' "$c"
  fi
done
ip netns list 2>/dev/null | grep -qw "$LAPTOP_NS" && echo "  laptop namespace        $LAPTOP_NS" || echo "  laptop namespace        absent"
if [ "$up" -eq "$total" ]; then
  kctl get nodes -o wide 2>/dev/null
  echo "kubeconfig: $KT_CLUSTER_DIR/admin.kubeconfig"
  exit 0
fi
echo "cluster is not (fully) up: $up of $total components running; 'npm run cluster:up' starts it."
exit 1
