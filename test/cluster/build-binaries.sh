#!/usr/bin/env bash
# Builds kube-apiserver, kube-controller-manager, kube-scheduler, kubelet, kube-proxy, kubectl,
# CoreDNS, krew and validate-krew-manifest from the Go module proxy into the version-keyed cache.
# A cache hit builds nothing and needs no Go.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"

wanted=(kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl coredns krew validate-krew-manifest)
missing=()
for b in "${wanted[@]}"; do [ -x "$BIN_DIR/$b" ] || missing+=("$b"); done
if [ ${#missing[@]} -eq 0 ]; then
  log "binaries: cached in $BIN_DIR"
  exit 0
fi
command -v go >/dev/null || die "Go is needed to build the cluster binaries once (missing: ${missing[*]}); install Go 1.24 or newer and run again."

mkdir -p "$BIN_DIR"
work="$KT_CACHE/build/k8s-$K8S_VERSION"
mkdir -p "$work"
export CGO_ENABLED=0 GOFLAGS=-mod=mod

step_start "download k8s.io/kubernetes $K8S_VERSION"
modfile=$(go mod download -json "k8s.io/kubernetes@$K8S_VERSION" | sed -n 's/.*"GoMod": "\(.*\)",/\1/p')
[ -f "$modfile" ] || die "could not download k8s.io/kubernetes@$K8S_VERSION from the Go module proxy."
step_end

# k8s.io/kubernetes replaces every staging module with ./staging/...; a wrapper module pins each
# one to its v0.y.z tag instead, which is how the published tags line up.
staging_tag="v0.${K8S_VERSION#v1.}"
{
  echo "module kt.invalid/k8s-build"
  echo
  echo "go 1.24.0"
  echo
  echo "require k8s.io/kubernetes $K8S_VERSION"
  echo
  echo "replace ("
  sed -n 's#^\s*\(k8s.io/[a-z0-9-]*\) => ./staging/.*#\t\1 => \1 '"$staging_tag"'#p' "$modfile"
  echo ")"
} > "$work/go.mod"
n=$(grep -c '=>' "$work/go.mod")
[ "$n" -gt 20 ] || die "found only $n staging modules in $modfile; the wrapper module would not build."

ver_pkg() {
  local p=$1 major minor
  major=${K8S_VERSION#v}; major=${major%%.*}
  minor=${K8S_VERSION#v*.}; minor=${minor%%.*}
  echo "-X $p.gitVersion=$K8S_VERSION -X $p.gitMajor=$major -X $p.gitMinor=$minor -X $p.gitTreeState=clean -X $p.buildDate=1970-01-01T00:00:00Z"
}
ldflags="-s -w $(ver_pkg k8s.io/component-base/version) $(ver_pkg k8s.io/client-go/pkg/version)"

k8s=()
for b in kube-apiserver kube-controller-manager kube-scheduler kubelet kube-proxy kubectl; do
  [ -x "$BIN_DIR/$b" ] || k8s+=("k8s.io/kubernetes/cmd/$b")
done
if [ ${#k8s[@]} -gt 0 ]; then
  step_start "go build ${#k8s[@]} Kubernetes binaries (cold: about 5 min on 2 cores)"
  (cd "$work" && go build -trimpath -ldflags "$ldflags" -o "$BIN_DIR/" "${k8s[@]}")
  step_end
fi

if [ ! -x "$BIN_DIR/coredns" ]; then
  step_start "go install CoreDNS $COREDNS_VERSION"
  GOBIN="$BIN_DIR" go install -trimpath -ldflags "-s -w" "github.com/coredns/coredns@$COREDNS_VERSION"
  step_end
fi
# krew's module list is not served by the proxy, which `go install pkg@version` insists on
# reading; a wrapper module that requires it builds the same code without that lookup.
if [ ! -x "$BIN_DIR/krew" ] || [ ! -x "$BIN_DIR/validate-krew-manifest" ]; then
  step_start "go build krew and validate-krew-manifest $KREW_VERSION"
  kw="$KT_CACHE/build/krew-$KREW_VERSION"
  mkdir -p "$kw"
  printf 'module kt.invalid/krew-build\n\ngo 1.24.0\n\nrequire sigs.k8s.io/krew %s\n' "$KREW_VERSION" > "$kw/go.mod"
  (cd "$kw" && go build -trimpath -ldflags "-s -w" -o "$BIN_DIR/" sigs.k8s.io/krew/cmd/krew sigs.k8s.io/krew/cmd/validate-krew-manifest)
  step_end
fi
log "binaries: built into $BIN_DIR ($(du -sh "$BIN_DIR" | cut -f1))"
