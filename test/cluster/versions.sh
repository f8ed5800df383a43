# Versions of everything the local test cluster is built from. One place, sourced by every script.
# 1.33 is the newest Kubernetes that runs on Debian 12's etcd 3.4, containerd 1.6 and cgroup v1
# without forcing anything.
K8S_VERSION=v1.33.13
COREDNS_VERSION=v1.12.4
KREW_VERSION=v0.5.0
# The network emulator of `npm run bench:wan` (latest on the Go module proxy for /v2); built on
# first use into $KT_CACHE/bin/toxiproxy-$TOXIPROXY_VERSION, apart from the cluster's binaries.
TOXIPROXY_VERSION=v2.5.0

# Everything built or downloaded lives outside the repository, keyed by version, so a second
# run (or a fresh clone on the same machine) builds nothing.
KT_CACHE=${KT_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/kt}
BIN_DIR="$KT_CACHE/bin/k8s-$K8S_VERSION-coredns-$COREDNS_VERSION-krew-$KREW_VERSION"

# Runtime state of a running cluster (PKI, configs, data, logs, pids).
KT_CLUSTER_DIR=${KT_CLUSTER_DIR:-/var/lib/kt-cluster}

# Addresses. The node IP lives on a port-less bridge of its own, which also carries the service
# range, so that a ClusterIP without a kube-proxy rule is dropped here instead of leaving eth0.
NODE_NAME=kt-node
NODE_IP=10.201.0.1
NODE_DEV=kt0
POD_CIDR=10.244.0.0/16
POD_SUBNET=10.244.0.0/24
CNI_BRIDGE=kt-cni0
SERVICE_CIDR=10.96.0.0/16
KUBERNETES_SVC_IP=10.96.0.1
DNS_SVC_IP=10.96.0.10
CLUSTER_DOMAIN=cluster.local
API_PORT=6443
MTU=1400

# The developer "laptop": a network namespace whose only route leads to the API server.
LAPTOP_NS=kt-laptop
LAPTOP_HOST_DEV=kt-lap0
LAPTOP_HOST_IP=10.202.0.1
LAPTOP_IP=10.202.0.2

RUN_DIR=/run/kt-cluster
CONTAINERD_SOCK=$RUN_DIR/containerd.sock
PAUSE_IMAGE=registry.k8s.io/pause:3.10
