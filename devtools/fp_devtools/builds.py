"""Binaries built from source through the Go module proxy, cached, with visible progress."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from fp_devtools import cache
from fp_devtools.process import ServerFailed

SCRIPTS = Path(__file__).with_name("scripts")


@contextmanager
def build_lock(name: str):
    """One build of a thing at a time, even across processes (two pytest runs, a person and CI)."""
    lock_path = cache.cache_dir("locks") / f"{name}.lock"
    with open(lock_path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def run_build(name: str, argv: list[str], log: Path, env: dict[str, str]) -> None:
    """Run a build script, echoing its stage lines with elapsed time so a cold build shows progress."""
    log.parent.mkdir(parents=True, exist_ok=True)
    start = time.monotonic()
    print(f"[fraudpipe dev] building {name} (cold cache: minutes; log {log})", file=sys.stderr, flush=True)
    with open(log, "w") as out:
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            out.write(line)
            out.flush()
            if line.startswith("["):
                print(f"  {time.monotonic() - start:6.1f}s {line.rstrip()}", file=sys.stderr, flush=True)
        rc = proc.wait()
    if rc != 0:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-30:])
        raise ServerFailed(f"building {name} failed (exit {rc}); log {log}:\n{tail}")
    print(f"[fraudpipe dev] built {name} in {time.monotonic() - start:.0f} s", file=sys.stderr, flush=True)


def _have(folder: Path, names: list[str]) -> bool:
    return all(os.access(folder / n, os.X_OK) for n in names)


def _build_once(name: str, out: Path, names: list[str], title: str, argv: list[str]) -> Path:
    """Run the build unless `out` already holds `names`; one builder at a time across processes."""
    if _have(out, names):
        return out
    cache.require("go")
    with build_lock(name):
        if not _have(out, names):
            run_build(title, argv, cache.cache_root() / "logs" / f"{name}-build.log", cache.go_env())
    return out


def kube_binaries() -> Path:
    """kube-apiserver, kube-controller-manager and kubectl, built once per version."""
    out = cache.cache_dir("kube", f"v{cache.KUBE_VERSION}")
    return _build_once(
        "kube",
        out,
        ["kube-apiserver", "kube-controller-manager", "kubectl"],
        f"Kubernetes v{cache.KUBE_VERSION} (kube-apiserver, kube-controller-manager, kubectl)",
        [
            "bash",
            str(SCRIPTS / "build-kube.sh"),
            cache.KUBE_VERSION,
            str(out),
            str(cache.cache_root() / "work" / "kube"),
        ],
    )


def etcd_binary() -> Path:
    out = cache.cache_dir("etcd", f"v{cache.ETCD_VERSION}")
    return (
        _build_once(
            "etcd",
            out,
            ["etcd"],
            f"etcd v{cache.ETCD_VERSION}",
            [
                "bash",
                str(SCRIPTS / "build-etcd.sh"),
                cache.ETCD_VERSION,
                str(out),
                str(cache.cache_root() / "work" / "etcd"),
            ],
        )
        / "etcd"
    )


def helm_binary() -> Path:
    out = cache.cache_dir("helm", f"v{cache.HELM_VERSION}")
    minor = cache.KUBE_VERSION.split(".")[1]
    return (
        _build_once(
            "helm",
            out,
            ["helm"],
            f"helm v{cache.HELM_VERSION}",
            ["bash", str(SCRIPTS / "build-helm.sh"), cache.HELM_VERSION, minor, str(out)],
        )
        / "helm"
    )
