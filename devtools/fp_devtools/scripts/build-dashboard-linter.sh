#!/usr/bin/env bash
# Build Grafana's dashboard-linter from the Go module proxy. It has no release tags, so it is
# pinned by pseudo-version (commit 1765d94aec4a, 2024-12-24). The proxy serves that version but
# neither its version list (so `go install ...@v` fails while looking up deprecations) nor the
# checksum database's record of it (404): the module's hash is checked here instead (the h1: sum
# it had when pinned), and it is built inside a copy of its own source, whose go.sum pins every
# dependency.
# Usage: build-dashboard-linter.sh VERSION H1SUM OUT_DIR WORK_DIR
set -euo pipefail
V=$1 SUM=$2 OUT=$3 WORK=$4
MOD=github.com/grafana/dashboard-linter
mkdir -p "$OUT" "$WORK"
export GOTOOLCHAIN=local CGO_ENABLED=0 GONOSUMDB="$MOD"
echo "[dashboard-linter] downloading $MOD@$V"
JSON=$(go mod download -json "$MOD@$V")
GOT=$(sed -n 's/^\t"Sum": "\(.*\)",$/\1/p' <<<"$JSON")
DIR=$(sed -n 's/^\t"Dir": "\(.*\)",$/\1/p' <<<"$JSON")
if [ "$GOT" != "$SUM" ]; then
  echo "[dashboard-linter] $MOD@$V has hash '$GOT', expected '$SUM': refusing to build it" >&2
  exit 1
fi
rm -rf "$WORK/src" && cp -r "$DIR" "$WORK/src" && chmod -R u+w "$WORK/src"
cd "$WORK/src"
echo "[dashboard-linter] building"
go build -mod=mod -trimpath -ldflags "-s -w" -o "$OUT/dashboard-linter" .
echo "[dashboard-linter] done"
