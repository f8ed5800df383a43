#!/usr/bin/env bash
# Builds the release images, kt-shadow and kt-router, from the project's Dockerfiles, tagged
# <registry>/kt-shadow:<version> and <registry>/kt-router:<version>, with OCI labels; pushes them
# only with --push.
#   images/release.sh --registry REGISTRY [--push] [--version V] [--platform LIST]
#                     [--builder docker|buildah] [--only shadow|router] [--source URL]
#                     [--allow-stand-in]
# --platform linux/amd64,linux/arm64 builds a multi-platform image (docker buildx, or a buildah
# manifest list); the default is the builder's own platform. The builder defaults to docker when
# its daemon answers, else buildah. The plugins deploy <registry>/kt-shadow:<version> when told the
# registry: KT_IMAGE_REGISTRY=<registry>, or `registry: <registry>` in ~/.kt/config.yaml.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
registry="" push=0 version="" platforms="" builder="" only="" source="https://github.com/kt-dev/kt" allow_stand_in=0
die() { echo "release-images: $*" >&2; exit 1; }
while [ $# -gt 0 ]; do
  case "$1" in
    --registry) registry=${2:?}; shift 2;;
    --push) push=1; shift;;
    --version) version=${2:?}; shift 2;;
    --platform|--platforms) platforms=${2:?}; shift 2;;
    --builder) builder=${2:?}; shift 2;;
    --only) only=${2:?}; shift 2;;
    --source) source=${2:?}; shift 2;;
    --allow-stand-in) allow_stand_in=1; shift;;
    -h|--help) sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//'; exit 0;;
    *) echo "release-images: unknown argument '$1'; see --help." >&2; exit 2;;
  esac
done
[ -n "$registry" ] || { echo "release-images: --registry is required (e.g. --registry ghcr.io/you); see --help." >&2; exit 2; }
registry=${registry%/}
case "$only" in ""|shadow|router) ;; *) echo "release-images: --only takes shadow or router." >&2; exit 2;; esac
pkg_field() { sed -n "s/^  \"$1\": *\"\([^\"]*\)\".*/\1/p" "$root/package.json" | head -n1; }
[ -n "$version" ] || version=$(pkg_field version)
license=$(pkg_field license)
[ -n "$version" ] || die "no version in package.json; pass --version."

if [ -z "$builder" ]; then
  if command -v docker >/dev/null && docker info >/dev/null 2>&1; then builder=docker
  elif command -v buildah >/dev/null; then builder=buildah
  else die "neither a docker daemon nor buildah is available; install one (Debian: apt-get install buildah)."
  fi
fi
case "$builder" in
  docker) command -v docker >/dev/null && docker info >/dev/null 2>&1 || die "--builder docker: the docker daemon does not answer.";;
  buildah) command -v buildah >/dev/null || die "--builder buildah: buildah is not installed (apt-get install buildah).";;
  *) echo "release-images: --builder takes docker or buildah." >&2; exit 2;;
esac
multi=0
[[ "$platforms" == *,* ]] && multi=1
if [ "$builder" = docker ] && [ "$multi" -eq 1 ]; then
  docker buildx version >/dev/null 2>&1 || die "multi-platform images need docker buildx (or --builder buildah)."
  [ "$push" -eq 1 ] || die "docker cannot keep a multi-platform image in its local image store; add --push, or use --builder buildah (which keeps a manifest list locally)."
fi

revision=$(git -C "$root" rev-parse HEAD 2>/dev/null || true)
created=$(date -u ${SOURCE_DATE_EPOCH:+-d "@$SOURCE_DATE_EPOCH"} +%Y-%m-%dT%H:%M:%SZ)

stand_in_base() {  # Dockerfile: does any base image it names (not a stage, not scratch) carry the stand-in mark?
  local base stages
  stages=$(awk 'toupper($1)=="FROM" && toupper($3)=="AS" {print $4}' "$1")
  for base in $(awk 'toupper($1)=="FROM" {print $2}' "$1" | sort -u); do
    [ "$base" = scratch ] && continue
    echo "$stages" | grep -qx "$base" && continue
    [[ "$base" == */* ]] || base=docker.io/library/$base
    buildah inspect --type image --format '{{index .OCIv1.Config.Labels "kt.dev/stand-in"}}' "$base" 2>/dev/null | grep -qx true && return 0
  done
  return 1
}

build_one() {  # kind Dockerfile
  local kind=$1 file=$2 ref="$registry/kt-$1:$version" t0 size bytes
  local labels=(
    --label "org.opencontainers.image.title=kt-$kind"
    --label "org.opencontainers.image.version=$version"
    --label "org.opencontainers.image.source=$source"
    --label "org.opencontainers.image.licenses=$license"
    --label "org.opencontainers.image.created=$created"
  )
  [ -n "$revision" ] && labels+=(--label "org.opencontainers.image.revision=$revision")
  t0=$(date +%s)
  echo "release-images: building $ref from $(basename "$file") with $builder${platforms:+ for $platforms} ..." >&2
  if [ "$builder" = docker ]; then
    if [ "$multi" -eq 1 ]; then
      docker buildx build --platform "$platforms" -f "$file" -t "$ref" "${labels[@]}" --push "$root"
    else
      docker build ${platforms:+--platform "$platforms"} -f "$file" -t "$ref" "${labels[@]}" "$root"
      [ "$push" -eq 1 ] && docker push "$ref"
    fi
    size=$(docker image inspect --format '{{.Size}}' "$ref" 2>/dev/null || echo "?")
    echo "release-images: built $ref in $(( $(date +%s) - t0 ))s; uncompressed size $size bytes" >&2
    return
  fi
  if [ "$multi" -eq 1 ]; then
    buildah manifest rm "$ref" >/dev/null 2>&1 || true
    buildah build --layers --network=host --platform "$platforms" --manifest "$ref" -f "$file" "${labels[@]}" "$root"
  else
    buildah build --layers --network=host ${platforms:+--platform "$platforms"} -f "$file" -t "$ref" "${labels[@]}" "$root"
  fi
  # The stand-in node bases that images/base-node.sh assembles for offline machines mark
  # themselves. The images are FROM scratch and inherit no label, so their build bases are asked.
  if stand_in_base "$file"; then
    echo "release-images: WARNING: $ref is built on the local stand-in node base image (images/base-node.sh), not the official one." >&2
    if [ "$push" -eq 1 ] && [ "$allow_stand_in" -eq 0 ]; then
      die "refusing to push an image built on the stand-in base; pull the official base image first (buildah rmi docker.io/library/node:26 && buildah pull docker.io/library/node:26), or pass --allow-stand-in."
    fi
  fi
  if [ "$multi" -eq 0 ]; then
    # Uncompressed: the layers as stored locally (uncompressed tars).
    bytes=0
    for s in $(buildah inspect --type image --format '{{.Manifest}}' "$ref" | sed 's/.*"layers":\[//; s/\].*//' | grep -o '"size":[0-9]*' | cut -d: -f2); do
      bytes=$((bytes + s))
    done
    echo "release-images: built $ref in $(( $(date +%s) - t0 ))s; uncompressed size $bytes bytes ($(( (bytes + 500000) / 1000000 )) MB)" >&2
  else
    echo "release-images: built manifest list $ref ($platforms) in $(( $(date +%s) - t0 ))s" >&2
  fi
  if [ "$push" -eq 1 ]; then
    if [ "$multi" -eq 1 ]; then buildah manifest push --all "$ref" "docker://$ref"; else buildah push "$ref" "docker://$ref"; fi
    echo "release-images: pushed $ref" >&2
  fi
}

built=0
for kind in shadow router; do
  [ -z "$only" ] || [ "$only" = "$kind" ] || continue
  file="$root/Dockerfile.$kind"
  if [ ! -f "$file" ]; then
    if [ "$only" = "$kind" ]; then die "Dockerfile.$kind is not in this checkout, so kt-$kind cannot be built."; fi
    echo "release-images: NOTE: Dockerfile.$kind is not in this checkout yet; skipping kt-$kind (kt-mesh needs it)." >&2
    continue
  fi
  build_one "$kind" "$file"
  built=$((built + 1))
done
[ "$built" -gt 0 ] || die "nothing was built."
[ "$push" -eq 1 ] || echo "release-images: not pushed (add --push to push to $registry)." >&2
