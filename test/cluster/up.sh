#!/usr/bin/env bash
# Starts the local single-node Kubernetes cluster (idempotent: a running cluster is only reported).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"
. "$here/pki.sh"

[ "$(id -u)" -eq 0 ] || die "the local cluster needs root (containerd, the kubelet and network namespaces); run it as root."

components=(etcd kube-apiserver kube-controller-manager kube-scheduler containerd kubelet kube-proxy coredns)
running=0
for c in "${components[@]}"; do is_running "$c" && running=$((running + 1)); done
if [ "$running" -eq "${#components[@]}" ] && kctl get --raw /readyz >/dev/null 2>&1; then
  log "cluster already up: $(kctl get node "$NODE_NAME" --no-headers 2>/dev/null | awk '{print $1, $2, $5}')"
  log "kubeconfig: $KT_CLUSTER_DIR/admin.kubeconfig (laptop namespace: $LAPTOP_NS)"
  exit 0
fi
leftovers=()
[ "$running" -gt 0 ] && leftovers+=("$running of ${#components[@]} components running")
compgen -G "$RUN_DIR/*.pid" >/dev/null && [ "$running" -eq 0 ] && leftovers+=("pid files in $RUN_DIR")
ip link show "$NODE_DEV" >/dev/null 2>&1 && leftovers+=("device $NODE_DEV")
ip link show "$CNI_BRIDGE" >/dev/null 2>&1 && leftovers+=("bridge $CNI_BRIDGE")
ip netns list 2>/dev/null | grep -qw "$LAPTOP_NS" && leftovers+=("namespace $LAPTOP_NS")
if [ ${#leftovers[@]} -gt 0 ]; then
  die "a cluster from an earlier run was not stopped cleanly (${leftovers[*]}); run 'npm run cluster:down' and then 'npm run cluster:up'."
fi

# Port check before anything is changed.
for p in 2379 2380 $API_PORT 10248 10249 10250 10256 10257 10259; do
  port_in_use "$p" && die "port $p is already in use by another program ($(ss -Hltnp "sport = :$p" | grep -o 'users:(("[^"]*' | cut -d'"' -f2 | head -1)); stop it, then run up again."
done

bash "$here/prereqs.sh"
bash "$here/build-binaries.sh"
export PATH="$BIN_DIR:$PATH"
t_start=$(date +%s)
mkdir -p "$KT_CLUSTER_DIR"/{logs,cni/net.d,kubelet} "$RUN_DIR"
rm -f "$KT_CLUSTER_DIR"/logs/*.log

# Kernel settings the cluster needs; the originals are kept and restored by down.
saved=$KT_CLUSTER_DIR/sysctl.saved
: > "$saved"
for kv in net.ipv4.ip_forward=1 fs.inotify.max_user_instances=8192 fs.inotify.max_user_watches=524288 \
          net.bridge.bridge-nf-call-iptables=1 vm.overcommit_memory=1 kernel.panic=10 kernel.panic_on_oops=1; do
  k=${kv%%=*}
  echo "$k=$(sysctl -n "$k")" >> "$saved"
  sysctl -qw "$kv" || die "could not set $kv."
done

step_start "network: $NODE_DEV ($NODE_IP, service range $SERVICE_CIDR), firewall chain KT-CLUSTER"
ip link add "$NODE_DEV" type bridge
ip link set "$NODE_DEV" up
ip addr add "$NODE_IP/32" dev "$NODE_DEV"
ip route add "$SERVICE_CIDR" dev "$NODE_DEV"
# Pods and the laptop may talk to the host and to each other, never through it to anywhere else.
iptables -N KT-CLUSTER
iptables -A KT-CLUSTER -i "$CNI_BRIDGE" -o "$CNI_BRIDGE" -j ACCEPT
iptables -A KT-CLUSTER -i "$CNI_BRIDGE" -j DROP
iptables -A KT-CLUSTER -i "$LAPTOP_HOST_DEV" -j DROP
iptables -A KT-CLUSTER -o "$LAPTOP_HOST_DEV" -j DROP
iptables -I FORWARD 1 -j KT-CLUSTER
step_end

step_start "PKI and kubeconfigs"
make_pki
step_end

step_start "etcd"
start_daemon etcd etcd --name kt --data-dir "$RUN_DIR/etcd" \
  --listen-client-urls http://127.0.0.1:2379 --advertise-client-urls http://127.0.0.1:2379 \
  --listen-peer-urls http://127.0.0.1:2380 --initial-advertise-peer-urls http://127.0.0.1:2380 \
  --initial-cluster kt=http://127.0.0.1:2380
wait_for etcd 30 curl -sf http://127.0.0.1:2379/health
step_end

step_start "kube-apiserver"
start_daemon kube-apiserver kube-apiserver \
  --advertise-address="$NODE_IP" --bind-address="$NODE_IP" --secure-port="$API_PORT" \
  --etcd-servers=http://127.0.0.1:2379 \
  --service-cluster-ip-range="$SERVICE_CIDR" \
  --client-ca-file="$pki/ca.crt" --tls-cert-file="$pki/apiserver.crt" --tls-private-key-file="$pki/apiserver.key" \
  --kubelet-client-certificate="$pki/apiserver-kubelet-client.crt" --kubelet-client-key="$pki/apiserver-kubelet-client.key" \
  --kubelet-certificate-authority="$pki/ca.crt" --kubelet-preferred-address-types=InternalIP,Hostname \
  --service-account-issuer="https://kubernetes.default.svc.$CLUSTER_DOMAIN" \
  --service-account-key-file="$pki/service-account.pub" --service-account-signing-key-file="$pki/service-account.key" \
  --authorization-mode=Node,RBAC --enable-admission-plugins=NodeRestriction \
  --allow-privileged=true --profiling=false
wait_for kube-apiserver 90 kctl get --raw /readyz
step_end

step_start "bootstrap objects (RBAC for the apiserver and CoreDNS, the kube-dns Service)"
sed -e "s/@DNS_SVC_IP@/$DNS_SVC_IP/g" -e "s/@NODE_IP@/$NODE_IP/g" "$here/bootstrap.yaml" | kctl apply -f - >/dev/null
step_end

step_start "kube-controller-manager and kube-scheduler"
start_daemon kube-controller-manager kube-controller-manager \
  --kubeconfig="$KT_CLUSTER_DIR/controller-manager.kubeconfig" \
  --authentication-kubeconfig="$KT_CLUSTER_DIR/controller-manager.kubeconfig" \
  --authorization-kubeconfig="$KT_CLUSTER_DIR/controller-manager.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --use-service-account-credentials=true \
  --cluster-signing-cert-file="$pki/ca.crt" --cluster-signing-key-file="$pki/ca.key" \
  --root-ca-file="$pki/ca.crt" --service-account-private-key-file="$pki/service-account.key" \
  --cluster-cidr="$POD_CIDR" --service-cluster-ip-range="$SERVICE_CIDR" --profiling=false
start_daemon kube-scheduler kube-scheduler \
  --kubeconfig="$KT_CLUSTER_DIR/scheduler.kubeconfig" \
  --authentication-kubeconfig="$KT_CLUSTER_DIR/scheduler.kubeconfig" \
  --authorization-kubeconfig="$KT_CLUSTER_DIR/scheduler.kubeconfig" \
  --bind-address=127.0.0.1 --leader-elect=false --profiling=false
step_end

step_start "containerd + runc + bridge CNI"
cat > "$KT_CLUSTER_DIR/cni/net.d/10-kt.conflist" <<CNI
{
  "cniVersion": "1.0.0",
  "name": "kt-cni",
  "plugins": [
    {
      "type": "bridge", "bridge": "$CNI_BRIDGE", "isGateway": true, "ipMasq": false,
      "hairpinMode": true, "mtu": $MTU,
      "ipam": {
        "type": "host-local", "dataDir": "$RUN_DIR/cni-ipam",
        "ranges": [[{ "subnet": "$POD_SUBNET" }]], "routes": [{ "dst": "0.0.0.0/0" }]
      }
    },
    { "type": "portmap", "capabilities": { "portMappings": true } }
  ]
}
CNI
cat > "$KT_CLUSTER_DIR/containerd.toml" <<TOML
version = 2
root = "$KT_CLUSTER_DIR/containerd"
state = "$RUN_DIR/containerd"
[grpc]
  address = "$CONTAINERD_SOCK"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  # This machine's root may not lower oom_score_adj; without this every sandbox fails to start.
  restrict_oom_score_adj = true
  netns_mounts_under_state_dir = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "$KT_CLUSTER_DIR/cni/net.d"
TOML
start_daemon containerd containerd --config "$KT_CLUSTER_DIR/containerd.toml"
wait_for containerd 30 ctr --address "$CONTAINERD_SOCK" version
bash "$here/pause-image.sh"
step_end

step_start "kubelet"
cat > "$KT_CLUSTER_DIR/kubelet.yaml" <<YAML
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: $NODE_IP
healthzBindAddress: 127.0.0.1
readOnlyPort: 0
authentication:
  anonymous: { enabled: false }
  webhook: { enabled: true }
  x509: { clientCAFile: $pki/ca.crt }
authorization: { mode: Webhook }
tlsCertFile: $pki/kubelet-serving.crt
tlsPrivateKeyFile: $pki/kubelet-serving.key
cgroupDriver: cgroupfs
containerRuntimeEndpoint: unix://$CONTAINERD_SOCK
clusterDNS: [$DNS_SVC_IP]
clusterDomain: $CLUSTER_DOMAIN
failSwapOn: false
oomScoreAdj: 0
maxOpenFiles: 20000
protectKernelDefaults: false
serializeImagePulls: false
# Images are imported by hand (no registry): never garbage-collect them, never evict for disk.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard: { memory.available: 100Mi, nodefs.available: "1%", imagefs.available: "1%", nodefs.inodesFree: "1%" }
YAML
start_daemon kubelet kubelet --config="$KT_CLUSTER_DIR/kubelet.yaml" \
  --kubeconfig="$KT_CLUSTER_DIR/kubelet.kubeconfig" --root-dir="$KT_CLUSTER_DIR/kubelet" \
  --node-ip="$NODE_IP" --hostname-override="$NODE_NAME"
step_end

step_start "kube-proxy (iptables)"
cat > "$KT_CLUSTER_DIR/kube-proxy.yaml" <<YAML
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection: { kubeconfig: $KT_CLUSTER_DIR/kube-proxy.kubeconfig }
mode: iptables
clusterCIDR: $POD_CIDR
hostnameOverride: $NODE_NAME
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
oomScoreAdj: 0
# Leave the machine's conntrack settings alone.
conntrack: { maxPerCore: 0, min: 0, tcpEstablishedTimeout: 0s, tcpCloseWaitTimeout: 0s }
YAML
start_daemon kube-proxy kube-proxy --config="$KT_CLUSTER_DIR/kube-proxy.yaml"
step_end

step_start "CoreDNS on $NODE_IP:53 (behind the kube-dns Service $DNS_SVC_IP)"
cat > "$KT_CLUSTER_DIR/Corefile" <<COREFILE
.:53 {
    bind $NODE_IP
    errors
    ready 127.0.0.1:10181
    kubernetes $CLUSTER_DOMAIN in-addr.arpa ip6.arpa {
        kubeconfig $KT_CLUSTER_DIR/coredns.kubeconfig kt-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 30
}
COREFILE
# No forward plugin on purpose: names outside the cluster get no answer, so nothing leaves.
start_daemon coredns coredns -conf "$KT_CLUSTER_DIR/Corefile"
wait_for CoreDNS 30 curl -sf http://127.0.0.1:10181/ready
step_end

bash "$here/laptop.sh" up

step_start "waiting for node $NODE_NAME to be Ready"
wait_for "node $NODE_NAME" 120 kctl wait --for=condition=Ready "node/$NODE_NAME" --timeout=2s
step_end
step_start "waiting for cluster DNS through the Service IP"
wait_for "cluster DNS" 60 bash -c "dig +short +time=1 +tries=1 @$DNS_SVC_IP kubernetes.default.svc.$CLUSTER_DOMAIN | grep -qx $KUBERNETES_SVC_IP"
step_end
wait_for "the default ServiceAccount" 60 kctl get serviceaccount default -n default
log "cluster up in $(( $(date +%s) - t_start ))s (after binaries): $(kctl get node "$NODE_NAME" --no-headers | awk '{print $1, $2, $5}')"
log "kubeconfig: $KT_CLUSTER_DIR/admin.kubeconfig; laptop: ip netns exec $LAPTOP_NS ... (same kubeconfig)"
