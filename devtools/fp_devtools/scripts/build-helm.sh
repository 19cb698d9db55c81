#!/usr/bin/env bash
# Build the helm CLI (v3) with `go install`; helm's go.mod has no replace lines. The ldflags give
# it a real version string and a current default Kubernetes version for `helm template`.
# Usage: build-helm.sh VERSION KUBE_MINOR OUT_DIR    (e.g. 3.22.0 36)
set -euo pipefail
HV=$1 KMINOR=$2 OUT=$3
mkdir -p "$OUT"
export GOTOOLCHAIN=local CGO_ENABLED=0 GOBIN="$OUT"
echo "[helm] building helm v$HV"
go install -trimpath -ldflags "-s -w -X helm.sh/helm/v3/internal/version.version=v$HV -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMajor=1 -X helm.sh/helm/v3/pkg/chartutil.k8sVersionMinor=$KMINOR" "helm.sh/helm/v3/cmd/helm@v$HV"
echo "[helm] done"
