#!/usr/bin/env bash
# Assembles a stand-in for the official `node:<major>-slim` image from the project's pinned Node
# binary (from the npm registry), the glibc libraries it links, busybox for RUN steps, npm and CA
# certificates, and stores it in buildah under that name. Used where no registry is reachable, so
# the project's Dockerfiles build unchanged, as ops build them with the real base image.
# For the full `node:<major>` image (Debian's build tools on top of slim) the stand-in adds only
# the one tool the Dockerfiles' build stages take from it: binutils' strip, this machine's.
#   images/base-node.sh IMAGE_NAME
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: base-node.sh IMAGE_NAME}
node_bin=$root/node_modules/node/bin/node
[ -x "$node_bin" ] || { echo "images: the pinned Node binary is missing ($node_bin); run 'npm ci' first." >&2; exit 1; }
npm_dir=$(dirname "$(readlink -f "$(command -v npm)")")/..
[ -f "$npm_dir/package.json" ] || { echo "images: npm is needed to assemble the base image; install npm." >&2; exit 1; }
busybox=/bin/busybox
if ! file -L "$busybox" 2>/dev/null | grep -q 'statically linked'; then
  command -v apt-get >/dev/null || { echo "images: a static busybox is needed (Debian: busybox-static)." >&2; exit 1; }
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi
rootfs=$(mktemp -d); trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,usr/local/bin,usr/local/lib/node_modules,etc/ssl/certs,tmp,home/node,lib64}
chmod 1777 "$rootfs/tmp"
cp "$node_bin" "$rootfs/usr/local/bin/node"
copy_libs() {  # the shared libraries a binary links, at the paths the loader expects
  ldd "$1" | awk '/=> \// {print $3} /^[ \t]*\/lib/ {print $1}' | while read -r lib; do
    mkdir -p "$rootfs$(dirname "$lib")"
    cp -L "$lib" "$rootfs$lib"
  done
}
copy_libs "$node_bin"
case "$name" in
  *-slim) ;;
  *)
    strip_bin=$(readlink -f "$(command -v strip || true)")
    [ -x "$strip_bin" ] || { echo "images: the stand-in for $name needs binutils' strip (apt-get install binutils)." >&2; exit 1; }
    mkdir -p "$rootfs/usr/bin"
    cp "$strip_bin" "$rootfs/usr/bin/strip"
    copy_libs "$strip_bin";;
esac
cp "$busybox" "$rootfs/bin/busybox"
for applet in sh cp mv rm mkdir ls cat ln chmod chown env echo test true false sed grep tar gzip id; do
  ln -sf busybox "$rootfs/bin/$applet"
done
cp -a "$npm_dir" "$rootfs/usr/local/lib/node_modules/npm"
printf '#!/bin/sh\nexec node /usr/local/lib/node_modules/npm/bin/npm-cli.js "$@"\n' > "$rootfs/usr/local/bin/npm"
printf '#!/bin/sh\nexec node /usr/local/lib/node_modules/npm/bin/npx-cli.js "$@"\n' > "$rootfs/usr/local/bin/npx"
chmod +x "$rootfs/usr/local/bin/npm" "$rootfs/usr/local/bin/npx"
cp /etc/ssl/certs/ca-certificates.crt "$rootfs/etc/ssl/certs/"
# npm trusts the system's CA bundle, as this machine's own npm does (its registry access may be
# behind a TLS proxy with a private CA).
mkdir -p "$rootfs/usr/local/etc"
printf "cafile=/etc/ssl/certs/ca-certificates.crt\nupdate-notifier=false\nfund=false\naudit=false\n" > "$rootfs/usr/local/etc/npmrc"
printf 'root:x:0:0:root:/root:/bin/sh\nnode:x:1000:1000::/home/node:/bin/sh\n' > "$rootfs/etc/passwd"
printf 'root:x:0:\nnode:x:1000:\n' > "$rootfs/etc/group"
chown 1000:1000 "$rootfs/home/node"

c=$(buildah from scratch)
buildah copy -q "$c" "$rootfs" / >/dev/null
buildah config --env PATH=/usr/local/bin:/usr/bin:/bin --env NODE_VERSION="$("$node_bin" --version | tr -d v)" \
  --cmd '["node"]' --label "kt.dev/stand-in=true" "$c"
buildah commit -q --rm "$c" "$name" >/dev/null
echo "images: assembled stand-in base image $name (Node $("$node_bin" --version))" >&2
