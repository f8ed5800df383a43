#!/usr/bin/env bash
# Builds the images the end-to-end tests deploy, from the same Dockerfiles ops use, and loads
# them into the local cluster. buildah's layer cache makes an unchanged rebuild quick.
set -euo pipefail
cd "$(dirname "$0")/.."
. test/images.env
version=$(node -p "require('./package.json').version")
bash images/build.sh --file test/workloads/echo/Dockerfile --tag "$KT_TEST_ECHO_IMAGE" --load
# Under the default name the plugins deploy, so the tests need no --image flag.
bash images/build.sh --file Dockerfile.shadow --tag "ghcr.io/kt-dev/kt-shadow:$version" --load
bash images/build.sh --file Dockerfile.router --tag "ghcr.io/kt-dev/kt-router:$version" --load
