#!/usr/bin/env bash
# make demo: run the example Python block end to end and show its result.
set -euo pipefail
cd "$(dirname "$0")/.."
berth=bin/berth
out=examples/python-csv/out

echo "==> base image (built from Debian packages the first time; measured: about 4 min on a loaded 2-core machine; instant once built)"
start=$SECONDS
$berth runtime bootstrap python
echo "    base image step: $((SECONDS - start)) s"

echo "==> berth run examples/python-csv/block.yaml"
rm -rf "$out"
$berth run --packages examples/packages examples/python-csv/block.yaml --out "$out"

echo
echo "==> the block's result, $out/summary.csv:"
cat "$out/summary.csv"
echo
echo "Run 'make demo' again: the summary says 'cache hit, no build'."
