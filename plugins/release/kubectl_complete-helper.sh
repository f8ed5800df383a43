#!/bin/sh
# kubectl 1.26+ completes `kubectl kt-connect ...` by running kubectl_complete-kt_connect from PATH
# with the words after the plugin name (cobra's __complete protocol). Installed under that name,
# this asks the plugin itself: the one beside this file, else the one on PATH.
name=$(basename "$0")
name=${name#kubectl_complete-}
dir=$(dirname "$0")
if [ -x "$dir/kubectl-$name" ]; then
  exec "$dir/kubectl-$name" __complete "$@"
fi
exec "kubectl-$name" __complete "$@"
