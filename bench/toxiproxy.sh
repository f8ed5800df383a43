#!/usr/bin/env bash
# Builds toxiproxy-server and toxiproxy-cli from the Go module proxy into the version-keyed cache
# (next to the cluster's binaries, not among them), once; prints the folder. A cache hit needs no Go.
set -euo pipefail
here=$(cd "$(dirname "$0")/../test/cluster" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"

dir="$KT_CACHE/bin/toxiproxy-$TOXIPROXY_VERSION"
if [ ! -x "$dir/toxiproxy-server" ] || [ ! -x "$dir/toxiproxy-cli" ]; then
  command -v go >/dev/null || die "Go is needed to build toxiproxy $TOXIPROXY_VERSION once; install Go 1.24 or newer and run again."
  step_start "go install toxiproxy $TOXIPROXY_VERSION"
  # v2.5.0 names its commands cmd/server and cmd/cli; go install names binaries after the folder.
  gobin="$KT_CACHE/build/toxiproxy-$TOXIPROXY_VERSION"
  mkdir -p "$gobin" "$dir"
  GOBIN="$gobin" CGO_ENABLED=0 GOFLAGS=-mod=mod go install -trimpath -ldflags "-s -w" \
    "github.com/Shopify/toxiproxy/v2/cmd/server@$TOXIPROXY_VERSION" "github.com/Shopify/toxiproxy/v2/cmd/cli@$TOXIPROXY_VERSION"
  mv "$gobin/server" "$dir/toxiproxy-server"
  mv "$gobin/cli" "$dir/toxiproxy-cli"
  step_end
fi
echo "$dir"
