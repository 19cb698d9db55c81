#!/usr/bin/env bash
# Build kube-apiserver, kube-controller-manager and kubectl from source through the Go module
# proxy. k8s.io/kubernetes requires its staging modules at v0.0.0, which only a main module's
# replace lines can satisfy, so we build from a throwaway module that adds them.
# Usage: build-kube.sh VERSION OUT_DIR WORK_DIR      (e.g. 1.36.3)
set -euo pipefail
KV=$1 OUT=$2 WORK=$3
SV=0.${KV#1.}
MINOR=$(echo "$KV" | cut -d. -f2)
rm -rf "$WORK" && mkdir -p "$WORK" "$OUT" && cd "$WORK"
export GOTOOLCHAIN=local GOFLAGS=-mod=mod CGO_ENABLED=0
go mod init kubebuild >/dev/null 2>&1
echo "[kube] reading k8s.io/kubernetes@v$KV go.mod"
GOMOD=$(go mod download -json "k8s.io/kubernetes@v$KV" | python3 -c 'import json,sys;print(json.load(sys.stdin)["GoMod"])')
# Only the staging modules are required at exactly v0.0.0; k8s.io/utils and kube-openapi carry
# pseudo-versions that merely start with v0.0.0- and must be left alone.
for m in $(grep -E '^\s*k8s\.io/[^ ]+ v0\.0\.0\s*$' "$GOMOD" | awk '{print $1}'); do
  go mod edit -replace="$m=$m@v$SV"
done
go mod edit -require="k8s.io/kubernetes@v$KV"
cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kube-controller-manager"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
echo "[kube] resolving modules"
go mod tidy >/dev/null 2>&1 || go mod tidy
LD="-s -w"
for p in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  LD="$LD -X $p.gitVersion=v$KV -X $p.gitMajor=1 -X $p.gitMinor=$MINOR -X $p.gitTreeState=clean"
done
for cmd in kube-apiserver kube-controller-manager kubectl; do
  echo "[kube] building $cmd"
  go build -trimpath -ldflags "$LD" -o "$OUT/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd"
  mv "$OUT/$cmd.tmp" "$OUT/$cmd"
done
echo "[kube] done"
