#!/usr/bin/env bash
# Builds the images the end-to-end tests deploy, from the same Dockerfiles ops use, and loads
# them into the local cluster. buildah's layer cache makes an unchanged rebuild quick.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/images.env
bash images/build.sh --file test/workloads/echo/Dockerfile --tag "$KT_TEST_ECHO_IMAGE" --load
