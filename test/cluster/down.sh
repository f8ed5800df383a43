#!/usr/bin/env bash
# Stops exactly what up.sh started and removes its devices, routes, iptables rules, mounts and
# namespaces, then restores the kernel settings it changed. Safe to run on a half-started cluster.
# Kept between runs: the PKI and containerd's image store (so the next up is fast).
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"
[ "$(id -u)" -eq 0 ] || die "stopping the local cluster needs root; run it as root."
export PATH="$BIN_DIR:$PATH"

step_start "stopping pods"
# Controllers first, so nothing is recreated; then the kubelet tears each pod down properly
# (CNI DEL, volume unmounts) while it still runs.
stop_daemons kube-controller-manager kube-scheduler
if is_running kubelet && is_running kube-apiserver; then
  kctl delete pods --all -A --grace-period=0 --force --wait=false >/dev/null 2>&1
  for _ in $(seq 1 60); do
    n=$(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null | grep -c . || true)
    [ "${n:-0}" -eq 0 ] && break
    sleep 0.5
  done
fi
step_end

step_start "stopping components"
stop_daemons kubelet kube-proxy coredns kube-apiserver etcd
# Whatever the kubelet could not stop: kill the remaining tasks before containerd goes.
if is_running containerd; then
  for t in $(ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
    ctr --address "$CONTAINERD_SOCK" -n k8s.io tasks kill -s SIGKILL "$t" >/dev/null 2>&1
  done
  sleep 1
fi
stop_daemons containerd
# containerd-shim processes belong to our containerd by its state dir in their command line.
for pid in $(pgrep -f "containerd-shim.*-address $CONTAINERD_SOCK" 2>/dev/null); do kill -9 "$pid" 2>/dev/null; done
step_end

step_start "mounts, namespaces, devices, iptables"
# Mounts below our directories, deepest first (pod volumes, rootfs, netns handles).
grep -E " ($KT_CLUSTER_DIR|$RUN_DIR)/" /proc/mounts | awk '{print $2}' | sort -r | while read -r m; do
  umount -l "$m" 2>/dev/null
done
bash "$here/laptop.sh" down
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && ip link delete "$CNI_BRIDGE"
ip link show "$NODE_DEV" >/dev/null 2>&1 && ip link delete "$NODE_DEV"   # also drops the service route
if [ -x "$BIN_DIR/kube-proxy" ]; then "$BIN_DIR/kube-proxy" --cleanup >/dev/null 2>&1; fi
# Chains the kubelet, kube-proxy, the CNI plugins and up.sh itself created.
for table in filter nat mangle; do
  rules=$(iptables -t "$table" -S 2>/dev/null) || continue
  chains=$(echo "$rules" | awk '$1 == "-N" {print $2}' | grep -E '^(KUBE-|CNI-|KT-CLUSTER)' || true)
  # Drop every jump into those chains from the built-in chains, then the chains themselves.
  echo "$rules" | grep -E '^-A ' | grep -E -- "-j (KUBE-|CNI-|KT-CLUSTER)" | while read -r rule; do
    eval "iptables -t $table ${rule/-A /-D }" 2>/dev/null
  done
  for c in $chains; do iptables -t "$table" -F "$c" 2>/dev/null; done
  for c in $chains; do iptables -t "$table" -X "$c" 2>/dev/null; done
done
step_end

if [ -f "$KT_CLUSTER_DIR/sysctl.saved" ]; then
  while IFS= read -r kv; do sysctl -qw "$kv" 2>/dev/null; done < "$KT_CLUSTER_DIR/sysctl.saved"
  rm -f "$KT_CLUSTER_DIR/sysctl.saved"
fi
rm -rf "$RUN_DIR" "$KT_CLUSTER_DIR/kubelet"
log "cluster down"
