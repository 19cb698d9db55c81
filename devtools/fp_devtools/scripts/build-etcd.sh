#!/usr/bin/env bash
# Build etcd from go.etcd.io/etcd/server/v3. Its go.mod has replace lines, so `go install` is
# refused; a three-line main module calling etcdmain.Main builds the same server.
# Usage: build-etcd.sh VERSION OUT_DIR WORK_DIR      (e.g. 3.6.16)
set -euo pipefail
EV=$1 OUT=$2 WORK=$3
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT" && cd "$WORK"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
go mod init etcdbuild >/dev/null 2>&1
cat > main.go <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
echo "[etcd] resolving go.etcd.io/etcd/server/v3@v$EV"
go get "go.etcd.io/etcd/server/v3@v$EV" >/dev/null 2>&1 || go get "go.etcd.io/etcd/server/v3@v$EV"
go mod tidy >/dev/null 2>&1 || go mod tidy
echo "[etcd] building"
go build -trimpath -ldflags "-s -w" -o "$OUT/etcd.tmp" .
mv "$OUT/etcd.tmp" "$OUT/etcd"
echo "[etcd] done"
