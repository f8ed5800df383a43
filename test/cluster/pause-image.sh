#!/usr/bin/env bash
# The pod sandbox image: a static pause binary (musl), built here and imported into containerd
# under the name the CRI configuration uses. No registry involved.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"
ctr_() { ctr --address "$CONTAINERD_SOCK" -n k8s.io "$@"; }
ctr_ images check "name==$PAUSE_IMAGE" 2>/dev/null | grep -q . && exit 0

work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat > "$work/pause.c" <<'C'
/* Holds a pod's namespaces open; reaps zombies; exits on SIGINT/SIGTERM. */
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
static void stop(int s) { (void)s; _exit(0); }
static void reap(int s) { (void)s; while (waitpid(-1, 0, WNOHANG) > 0) {} }
int main(void) {
  signal(SIGINT, stop); signal(SIGTERM, stop); signal(SIGCHLD, reap);
  for (;;) pause();
}
C
musl-gcc -static -Os -s -o "$work/pause" "$work/pause.c"
c=$(buildah from scratch)
buildah copy -q "$c" "$work/pause" /pause >/dev/null
buildah config --entrypoint '["/pause"]' --user 65535:65535 "$c"
buildah commit -q --rm "$c" "$PAUSE_IMAGE" >/dev/null
buildah push -q "$PAUSE_IMAGE" "docker-archive:$work/pause.tar:$PAUSE_IMAGE"
ctr_ images import "$work/pause.tar" >/dev/null
log "pause image $PAUSE_IMAGE imported"
