#!/usr/bin/env bash
# Builds an image from one of the project's Dockerfiles with buildah, without a registry, and
# optionally loads it into the local cluster's containerd.
#   images/build.sh --file Dockerfile.shadow --tag kt-shadow:dev [--load]
# A base image named in FROM that is not stored locally is assembled by base-node.sh when it is a
# node:<major>-slim or node:<major> image; anything else must be present in buildah's storage.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
file="" tag="" load=0
while [ $# -gt 0 ]; do
  case "$1" in
    -f|--file) file=$2; shift 2;;
    -t|--tag) tag=$2; shift 2;;
    --load) load=1; shift;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "images: unknown argument '$1'; see --help." >&2; exit 2;;
  esac
done
[ -n "$file" ] && [ -n "$tag" ] || { echo "images: --file and --tag are required; see --help." >&2; exit 2; }
[ -f "$root/$file" ] || [ -f "$file" ] || { echo "images: no Dockerfile at $file." >&2; exit 2; }
[ -f "$file" ] || file=$root/$file
command -v buildah >/dev/null || { echo "images: buildah is needed (apt-get install buildah)." >&2; exit 1; }

t0=$(date +%s)
# Base images: every FROM that is not an earlier stage.
stages=$(awk 'toupper($1)=="FROM" && toupper($3)=="AS" {print $4}' "$file")
for base in $(awk 'toupper($1)=="FROM" {print $2}' "$file" | sort -u); do
  echo "$stages" | grep -qx "$base" && continue
  [ "$base" = scratch ] && continue
  full=$base
  [[ "$full" == */* ]] || full=docker.io/library/$full
  buildah inspect --type image "$full" >/dev/null 2>&1 && continue
  case "$base" in
    node:*-slim|node:[0-9]*[0-9]) bash "$root/images/base-node.sh" "$full";;
    *) echo "images: base image $base is not in local storage and cannot be pulled here; pull or build it first." >&2; exit 1;;
  esac
done

ref=$tag
[[ "$ref" == */* ]] || ref=localhost/$ref
echo "images: building $ref from ${file#"$root"/} ..." >&2
buildah build --pull=never --network=host --layers -q -f "$file" -t "$ref" "$root" >/dev/null
size=$(buildah inspect --type image --format '{{.Size}}' "$ref" 2>/dev/null || echo 0)
echo "images: built $ref in $(( $(date +%s) - t0 ))s" >&2

if [ "$load" -eq 1 ]; then
  . "$root/test/cluster/versions.sh"
  [ -S "$CONTAINERD_SOCK" ] || { echo "images: the local cluster is not running (no $CONTAINERD_SOCK); run 'npm run cluster:up'." >&2; exit 1; }
  tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
  buildah push -q "$ref" "docker-archive:$tmp/image.tar:$ref"
  ctr --address "$CONTAINERD_SOCK" -n k8s.io images import "$tmp/image.tar" >/dev/null
  echo "images: loaded $ref into the cluster ($(du -m "$tmp/image.tar" | cut -f1) MB archive)" >&2
fi
: "$size"
