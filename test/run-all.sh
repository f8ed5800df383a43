#!/usr/bin/env bash
# The project's whole test run (`npm test`): lint and type check, then unit, integration and
# end-to-end tests in one vitest run. The local cluster is started when it is not running and
# reused when it is; end-to-end tests run the plugins from the laptop network namespace.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PWD/node_modules/.bin:$PATH"
[ -x node_modules/.bin/node ] || { echo "test: dependencies are not installed; run 'npm ci' first." >&2; exit 1; }
t0=$(date +%s)

echo "== lint and type check"
eslint . && tsc -p tsconfig.json --noEmit

echo "== local cluster"
bash test/cluster/prereqs.sh    # also when the cluster is already up: the tests' own packages
bash test/cluster/ensure.sh

echo "== test images"
bash test/images.sh

echo "== vitest: unit, integration, e2e"
report=$(mktemp)
set +e
vitest run --reporter=default --reporter=json --outputFile.json="$report"
rc=$?
set -e
node -e '
  const r = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
  const skipped = r.numPendingTests + r.numTodoTests;
  // A failing beforeAll fails its file without failing a test: count such files too.
  const files = r.testResults.filter((f) => f.status === "failed" && f.assertionResults.every((a) => a.status !== "failed")).length;
  console.log(`vitest: ${r.numPassedTests} passed, ${r.numFailedTests} failed` + (skipped ? `, ${skipped} skipped` : "") + (files ? `, ${files} file(s) failed outside any test (a hook or import)` : ""));
' "$report" || true
rm -f "$report"
echo "test run took $(( $(date +%s) - t0 ))s"
exit $rc
