#!/usr/bin/env bash
# Prints what a node pulls for each image: the compressed size (gzip, as a registry stores the
# layers by default) and, with --import, how long containerd takes to import it cold.
#   images/size.sh [--import] [IMAGE...]     (default: the shadow and router images tests deploy)
# The layers are written with gzip by buildah into an OCI layout, as `buildah push` writes them to
# a registry; the size is the sum of the layer blobs and the config, the bytes a pull transfers.
# --import times a cold node taking the image in: `ctr images import` of that gzip OCI archive
# (store the blobs, unpack the layers) into a containerd of its own that holds nothing yet, the
# work a pull does besides the transfer (at B MB/s the transfer adds compressed/B seconds).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
import=0
refs=()
for a in "$@"; do
  case "$a" in
    --import) import=1;;
    -h|--help) sed -n '2,9p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    -*) echo "images: unknown argument '$a'; see --help." >&2; exit 2;;
    *) refs+=("$a");;
  esac
done
if [ ${#refs[@]} -eq 0 ]; then
  version=$(sed -n 's/^  "version": *"\([^"]*\)".*/\1/p' "$root/package.json" | head -n1)
  refs=("ghcr.io/kt-dev/kt-shadow:$version" "ghcr.io/kt-dev/kt-router:$version")
fi
command -v buildah >/dev/null || { echo "images: buildah is needed (apt-get install buildah)." >&2; exit 1; }
command -v jq >/dev/null || { echo "images: jq is needed (apt-get install jq)." >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
mb() { awk -v b="$1" 'BEGIN { printf "%.1f MB", b / 1000000 }'; }

# A node that never held any of the image's layers: a containerd of its own (no CRI, its own
# folders), started for each image, so nothing is shared with the cluster's or between images.
cold_import() {
  local dir pid t0 t1 sock
  dir=$(mktemp -d /var/tmp/kt-size-containerd.XXXXXX)
  sock=$dir/containerd.sock
  printf 'version = 2\nroot = "%s/root"\nstate = "%s/state"\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "%s"\n' \
    "$dir" "$dir" "$sock" > "$dir/config.toml"
  containerd --config "$dir/config.toml" >"$dir/log" 2>&1 & pid=$!
  for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.1; done
  [ -S "$sock" ] || { kill "$pid"; echo "  (containerd did not start: $(tail -n1 "$dir/log"))"; return; }
  t0=$(date +%s.%N)
  ctr --address "$sock" -n k8s.io images import "$1" >/dev/null
  t1=$(date +%s.%N)
  kill "$pid"; wait "$pid" 2>/dev/null || true
  umount -R "$dir/root" 2>/dev/null || true
  rm -rf "$dir"
  awk -v a="$t0" -v b="$t1" 'BEGIN { printf "  %.2f s", b - a }'
}

printf '%-40s %12s %12s %8s%s\n' image compressed uncompressed layers "$([ "$import" -eq 1 ] && echo '  cold import')"
for ref in "${refs[@]}"; do
  buildah inspect --type image "$ref" >/dev/null 2>&1 || { echo "images: no image $ref in buildah's storage; build it first (bash test/images.sh)." >&2; exit 1; }
  dir=$tmp/oci
  rm -rf "$dir"
  buildah push -q --format oci --compression-format gzip "$ref" "oci:$dir:img" >/dev/null
  manifest=$(jq -r '.manifests[0].digest' "$dir/index.json" | sed 's/^sha256://')
  compressed=$(jq '[.layers[].size] + [.config.size] | add' "$dir/blobs/sha256/$manifest")
  layers=$(jq '.layers | length' "$dir/blobs/sha256/$manifest")
  uncompressed=$(buildah inspect --type image --format '{{.Manifest}}' "$ref" | jq '[.layers[].size] | add')
  timing=""
  if [ "$import" -eq 1 ]; then
    buildah push -q --format oci --compression-format gzip "$ref" "oci-archive:$tmp/image.tar:$ref" >/dev/null
    timing=$(cold_import "$tmp/image.tar")
    rm -f "$tmp/image.tar"
  fi
  printf '%-40s %12s %12s %8s%s\n' "$ref" "$(mb "$compressed")" "$(mb "$uncompressed")" "$layers" "$timing"
done
