"""Where downloads and builds are cached, the pinned versions, and prerequisite checks."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

# Pinned versions of everything we fetch or build. Bump here, and only here.
KAFKA_VERSION = "4.4.0"
SLF4J_VERSION = "1.7.36"  # Kafka 4.x is still on slf4j-api 1.7: a 2.x binding would not bind
MAVEN_DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.8.1"
KUBE_VERSION = "1.36.3"
ETCD_VERSION = "3.6.16"
HELM_VERSION = "3.22.0"
PROMETHEUS_DEB = "prometheus"


class MissingPrerequisite(RuntimeError):
    """A tool the dev servers need is not installed; the message says how to get it."""


_HINTS = {
    "java": "install a JDK 17+ (Debian: apt-get install openjdk-17-jre-headless)",
    "mvn": "install Maven 3.8+ (Debian: apt-get install maven)",
    "go": "install Go 1.26+ (https://go.dev/doc/install), or set KUBEBUILDER_ASSETS to a folder "
    "holding kube-apiserver, etcd (and kube-controller-manager, kubectl)",
    "openssl": "install openssl (Debian: apt-get install openssl)",
    "apt-get": "Prometheus is taken from Debian's 'prometheus' package; on another system put "
    "prometheus and promtool on PATH or set FRAUDPIPE_PROMETHEUS_DIR to their folder",
    "dpkg": "install dpkg (Debian tools) or set FRAUDPIPE_PROMETHEUS_DIR",
}


def cache_root() -> Path:
    root = Path(os.environ.get("FRAUDPIPE_CACHE", Path.home() / ".cache" / "fraudpipeline"))
    root.mkdir(parents=True, exist_ok=True)
    return root


def cache_dir(*parts: str) -> Path:
    path = cache_root().joinpath(*parts)
    path.mkdir(parents=True, exist_ok=True)
    return path


def require(tool: str) -> str:
    """Absolute path of `tool`, or a MissingPrerequisite naming it and how to get it."""
    found = shutil.which(tool)
    if not found:
        raise MissingPrerequisite(f"'{tool}' is needed but not on PATH: {_HINTS.get(tool, 'install it')}")
    return found


def go_env() -> dict[str, str]:
    """Environment for Go builds: module and build caches live in our cache, not in ~/go."""
    env = dict(os.environ)
    env.setdefault("GOMODCACHE", str(cache_dir("go", "mod")))
    env.setdefault("GOCACHE", str(cache_dir("go", "build")))
    env.setdefault("GOFLAGS", "-p=2")
    env["GOTOOLCHAIN"] = "local"
    return env


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


def upstream_crds_dir() -> Path:
    """Released Strimzi / Flink operator / Prometheus operator CRDs (test fixtures, not ours)."""
    return Path(os.environ.get("FRAUDPIPE_UPSTREAM_CRDS", repo_root().parent / "shared" / "upstream-crds"))
