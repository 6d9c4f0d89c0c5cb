#!/usr/bin/env bash
# make interop: nodejs-polars and DuckDB (node) read the files that
# `depthcap import` makes from real Binance recordings and must agree with
# the recordings and with each other (check.mjs). Needs Go, node >= 20 and
# npm; the packages come from the npm registry through package-lock.json.
#
#   DEPTHCAP=path/to/depthcap (else built here with $GO), GO=go,
#   TESTDATA=<repo>/../shared/testdata/binance, KEEP=1 keeps the temp dir,
#   EVERY=N checks every N-th row against the recordings (default: all).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../.." && pwd)
GO=${GO:-go}
TESTDATA=${TESTDATA:-$root/../shared/testdata/binance}
EVERY=${EVERY:-1}
start=$(date +%s)

recs=(
  spot_ethusdt_2024-08-08T2354.rec.gz     # across UTC midnight: two spot days
  futures_ethusdt_2024-08-08T2354.rec.gz
  spot_2021-10-12_4sym.rec.gz             # small files, 4 symbols each
  futures_2021-07-22_4sym.rec.gz
)
files=()
for r in "${recs[@]}"; do
  [ -f "$TESTDATA/$r" ] || { echo "interop: $TESTDATA/$r not found (set TESTDATA)" >&2; exit 2; }
  files+=("$TESTDATA/$r")
done

tmp=$(mktemp -d "${TMPDIR:-/tmp}/depthcap-interop.XXXXXX")
if [ "${KEEP:-}" = 1 ]; then
  echo "interop: keeping $tmp"
else
  trap 'rm -rf "$tmp"' EXIT
fi

echo "interop: npm ci (nodejs-polars, @duckdb/node-api from package-lock.json)"
(cd "$here" && npm ci --prefer-offline --no-audit --no-fund --loglevel=error)

if [ -z "${DEPTHCAP:-}" ]; then
  echo "interop: build depthcap"
  (cd "$root/services/depthcap" && "$GO" build -o "$tmp/depthcap" ./cmd/depthcap)
  DEPTHCAP=$tmp/depthcap
fi

echo "interop: depthcap import ${recs[*]}"
# 24h periods whatever WRITER_PERIOD says: check.mjs expects UTC days.
"$DEPTHCAP" import --data "$tmp/data" --period 24h "${files[@]}" >"$tmp/import.out" 2>"$tmp/import.log" || {
  cat "$tmp/import.out" "$tmp/import.log" >&2; exit 1; }
head -1 "$tmp/import.out"

rc=0
node "$here/check.mjs" --data "$tmp/data" --every "$EVERY" "${files[@]}" || rc=$?
echo "interop: done in $(( $(date +%s) - start ))s"
exit "$rc"
