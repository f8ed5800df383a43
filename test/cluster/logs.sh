#!/usr/bin/env bash
# Shows the last lines of each component's log, or follows one: logs.sh [COMPONENT] [-f]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
. "$here/versions.sh"
. "$here/lib.sh"
dir=$KT_CLUSTER_DIR/logs
[ -d "$dir" ] || die "no logs yet in $dir; start the cluster with 'npm run cluster:up'."
if [ -n "${1:-}" ]; then
  [ -f "$dir/$1.log" ] || die "no log for '$1'; there are: $(cd "$dir" && ls *.log | sed 's/\.log$//' | tr '\n' ' ')"
  [ "${2:-}" = "-f" ] && exec tail -f "$dir/$1.log"
  exec tail -n 200 "$dir/$1.log"
fi
for f in "$dir"/*.log; do echo "==> $(basename "$f" .log) <=="; tail -n "${LINES_PER_LOG:-15}" "$f"; echo; done
