#!/usr/bin/env bash
# Installs the Debian packages the local cluster and the image builds need, when they are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/lib.sh"

[ "$(id -u)" -eq 0 ] || die "the local cluster needs root (it starts containerd, the kubelet and network namespaces); run as root."

# package -> a file it installs, to tell whether it is present without asking dpkg for each.
declare -A pkgs=(
  [etcd-server]=/usr/bin/etcd
  [containerd]=/usr/bin/containerd
  [runc]=/usr/sbin/runc
  [containernetworking-plugins]=/usr/lib/cni/bridge
  [iptables]=/usr/sbin/iptables
  [conntrack]=/usr/sbin/conntrack
  [iproute2]=/usr/sbin/ip
  [buildah]=/usr/bin/buildah
  [openssl]=/usr/bin/openssl
  [musl-tools]=/usr/bin/musl-gcc
  [socat]=/usr/bin/socat
  [curl]=/usr/bin/curl
  [procps]=/usr/bin/pgrep
  [bind9-dnsutils]=/usr/bin/dig
  # kt-dashboard's end-to-end test drives this browser (puppeteer-core, no browser download).
  [chromium]=/usr/bin/chromium
  [fonts-dejavu-core]=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
)
missing=()
for p in "${!pkgs[@]}"; do [ -e "${pkgs[$p]}" ] || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  command -v apt-get >/dev/null || die "missing packages (${missing[*]}) and no apt-get to install them; install them by hand."
  step_start "apt-get install ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "apt-get could not install ${missing[*]}; see the output above."
  step_end
fi
