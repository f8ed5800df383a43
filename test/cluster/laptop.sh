#!/usr/bin/env bash
# The developer "laptop": a network namespace whose only route leads to the API server.
# Pod IPs and ClusterIPs are unreachable from it, as from a real laptop outside the cluster.
#   laptop.sh up | down | exec CMD...
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"

case "${1:-}" in
  up)
    ip netns list | grep -qw "$LAPTOP_NS" && exit 0
    ip netns add "$LAPTOP_NS"
    ip link add "$LAPTOP_HOST_DEV" type veth peer name eth0 netns "$LAPTOP_NS"
    ip addr add "$LAPTOP_HOST_IP/30" dev "$LAPTOP_HOST_DEV"
    ip link set "$LAPTOP_HOST_DEV" up mtu "$MTU"
    ip -n "$LAPTOP_NS" link set lo up
    ip -n "$LAPTOP_NS" addr add "$LAPTOP_IP/30" dev eth0
    ip -n "$LAPTOP_NS" link set eth0 up mtu "$MTU"
    ip -n "$LAPTOP_NS" route add "$NODE_IP/32" via "$LAPTOP_HOST_IP"
    # ip netns exec bind-mounts these over /etc/hosts and /etc/resolv.conf, so tests that touch
    # the laptop's resolver or hosts file never touch the machine's own.
    mkdir -p "/etc/netns/$LAPTOP_NS"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' > "/etc/netns/$LAPTOP_NS/hosts"
    # No resolver of its own: like a laptop off the corporate network, nothing answers there.
    printf "nameserver 127.0.0.53\n" > "/etc/netns/$LAPTOP_NS/resolv.conf"
    cp "$KT_CLUSTER_DIR/admin.kubeconfig" "$KT_CLUSTER_DIR/laptop.kubeconfig"
    log "laptop namespace $LAPTOP_NS: $LAPTOP_IP, route only to the API server $NODE_IP:$API_PORT"
    ;;
  down)
    ip netns list | grep -qw "$LAPTOP_NS" && ip netns delete "$LAPTOP_NS"
    ip link show "$LAPTOP_HOST_DEV" >/dev/null 2>&1 && ip link delete "$LAPTOP_HOST_DEV"
    rm -rf "/etc/netns/$LAPTOP_NS"
    ;;
  exec)
    shift
    exec ip netns exec "$LAPTOP_NS" "$@"
    ;;
  *) die "usage: laptop.sh up | down | exec CMD...";;
esac
