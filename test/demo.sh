#!/usr/bin/env bash
# The main job, end to end: start the local cluster if needed, build and load the images, deploy
# the echo workload into namespace kt-demo, and run `kubectl kt-connect` from the laptop network
# namespace, then call the workload by name the way any program on a laptop would.
#   npm run demo              connect, show a few requests, disconnect
#   npm run demo -- --keep    stay connected: try things from `bash test/cluster/laptop.sh exec bash`
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
keep=0; [ "${1:-}" = "--keep" ] && keep=1
mode=${KT_DEMO_MODE:-transparent}

bash test/cluster/ensure.sh
bash test/images.sh
. test/cluster/versions.sh
kubectl() { "$BIN_DIR/kubectl" --kubeconfig "$KT_CLUSTER_DIR/admin.kubeconfig" "$@"; }
kubectl create namespace kt-demo --dry-run=client -o yaml | kubectl apply -f - >/dev/null
. test/images.env
sed -e 's/@NAME@/echo/g; s/@NAMESPACE@/kt-demo/g; s#@IMAGE@#'"$KT_TEST_ECHO_IMAGE"'#g; s/@REPLICAS@/2/g; s/@UDP_SERVICE_PORT@//g' test/e2e/echo.yaml | kubectl apply -f - >/dev/null
kubectl rollout status deployment/echo -n kt-demo --timeout=120s >/dev/null
echo "== echo workload running in namespace kt-demo"

laptop() { ip netns exec "$LAPTOP_NS" env PATH="$PWD/plugins/bin:$BIN_DIR:$PATH" KUBECONFIG="$KT_CLUSTER_DIR/laptop.kubeconfig" "$@"; }
log=$(mktemp)
echo "== laptop\$ kubectl kt-connect -n kt-demo --mode $mode"
# Started directly (not through the function) so that $! is the plugin itself: ip netns exec,
# env, kubectl and the launcher all exec into the next program.
ip netns exec "$LAPTOP_NS" env PATH="$PWD/plugins/bin:$BIN_DIR:$PATH" KUBECONFIG="$KT_CLUSTER_DIR/laptop.kubeconfig" \
  kubectl kt-connect -n kt-demo --mode "$mode" > >(tee "$log") 2>&1 &
pid=$!
stop() { kill -TERM "$pid" 2>/dev/null; wait "$pid" 2>/dev/null || true; sleep 0.2; rm -f "$log"; }
trap stop EXIT
for _ in $(seq 1 240); do grep -q 'Press Ctrl-C' "$log" && break; kill -0 "$pid" 2>/dev/null || exit 1; sleep 0.5; done
grep -q 'Press Ctrl-C' "$log" || { echo "demo: kt-connect did not get ready" >&2; exit 1; }

proxy=()
[ "$mode" = socks ] && proxy=(--proxy socks5h://127.0.0.1:2223)
for url in http://echo/ http://echo.kt-demo/hello http://echo.kt-demo.svc.cluster.local/fqdn; do
  echo "== laptop\$ curl ${proxy[*]} $url"
  laptop curl -sS -m 5 "${proxy[@]}" "$url"; echo
done
if [ "$keep" -eq 1 ]; then
  echo "== connected; in another terminal: bash test/cluster/laptop.sh exec bash   (Ctrl-C here to disconnect)"
  wait "$pid"
fi
