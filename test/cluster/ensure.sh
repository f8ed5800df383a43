#!/usr/bin/env bash
# For the test command: reuse a running cluster, clear what an unclean stop left behind, start one.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
if bash "$here/status.sh" >/dev/null 2>&1; then
  exec bash "$here/up.sh"     # reports the running cluster
fi
if ! bash "$here/up.sh"; then
  echo "cluster: clearing what an earlier run left behind, then starting again" >&2
  bash "$here/down.sh"
  bash "$here/up.sh"
fi
