#!/usr/bin/env bash
# npm run bench: compiles the benchmark (scripts/bench/*.ts and what it shares
# with the e2e harness and src/) with the repository's tsc into bench/tmp/
# (ignored; node_modules resolves from there), runs it, removes the build.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
mkdir -p "$root/bench/tmp"
out=$(mktemp -d "$root/bench/tmp/build.XXXXXX")
trap 'rm -rf "$out"' EXIT
"$root/node_modules/.bin/tsc" -p "$root/scripts/bench/tsconfig.json" --outDir "$out"
BENCH_ROOT=$root node "$out/scripts/bench/main.js" "$@"
