"""Prometheus and promtool from Debian's `prometheus` package, extracted rather than installed.

`apt-get install prometheus` would start a system daemon on :9090; `apt-get download` plus
`dpkg -x` gives the two binaries and nothing else.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import yaml

from fp_devtools import argv, cache
from fp_devtools.builds import build_lock
from fp_devtools.process import ServerFailed, spawn, stopped_on_failure, wait_healthy


def _extracted() -> Path | None:
    for deb_dir in sorted(cache.cache_dir("prometheus").glob("*/root/usr/bin")):
        if (deb_dir / "prometheus").exists() and (deb_dir / "promtool").exists():
            return deb_dir
    return None


def binaries() -> Path:
    """Folder holding `prometheus` and `promtool`."""
    given = os.environ.get("FRAUDPIPE_PROMETHEUS_DIR")
    if given:
        if not (Path(given, "prometheus").exists() and Path(given, "promtool").exists()):
            raise cache.MissingPrerequisite(f"FRAUDPIPE_PROMETHEUS_DIR={given} holds no prometheus and promtool")
        return Path(given)
    found = _extracted()
    if found:
        return found
    apt, dpkg = cache.require("apt-get"), cache.require("dpkg")
    with build_lock("prometheus"):
        found = _extracted()
        if found:
            return found
        work = cache.cache_dir("prometheus", "download")
        # apt's sandbox user must be able to write where the .deb lands
        work.chmod(0o777)

        def download() -> subprocess.CompletedProcess:
            return subprocess.run([apt, "download", cache.PROMETHEUS_DEB], cwd=work, capture_output=True, text=True)

        got = download()
        if got.returncode != 0:  # a fresh machine has no package lists until `apt-get update` ran once
            # bounded wait on the lists' lock when another apt runs, rather than failing at once
            subprocess.run([apt, "-o", "DPkg::Lock::Timeout=600", "update", "-qq"], capture_output=True, text=True)
            got = download()
        debs = sorted(work.glob("prometheus_*.deb"))
        if got.returncode != 0 or not debs:
            raise ServerFailed(f"apt-get download prometheus failed: {got.stdout}{got.stderr}")
        version = debs[-1].name.split("_")[1].replace("+", "-").replace(":", "-")
        root = cache.cache_dir("prometheus", version, "root")
        ex = subprocess.run([dpkg, "-x", str(debs[-1]), str(root)], capture_output=True, text=True)
        if ex.returncode != 0:
            raise ServerFailed(f"dpkg -x {debs[-1]} failed: {ex.stderr}")
        shutil.rmtree(work, ignore_errors=True)
    found = _extracted()
    if not found:
        raise ServerFailed("the prometheus package held no usr/bin/prometheus and usr/bin/promtool")
    return found


def config(targets_dir: Path, scrape_interval: str = "5s") -> dict:
    """Scrape itself, plus whatever target files components drop into `targets_dir`."""
    return {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "rule_files": [str(targets_dir.parent / "rules" / "*.yaml")],
        "scrape_configs": [
            {"job_name": "prometheus", "static_configs": [{"targets": ["__SELF__"]}]},
            {
                "job_name": "fraudpipe",
                "file_sd_configs": [
                    {"files": [str(targets_dir / "*.json"), str(targets_dir / "*.yaml")], "refresh_interval": "5s"}
                ],
            },
        ],
    }


def start(state_dir: Path, port: int | None = None, procs_out: list[subprocess.Popen] | None = None) -> dict:
    """Start Prometheus on `port` (a free one when None), its data and targets under `state_dir`;
    the process is appended to `procs_out` (a caller that watches it for its exit code)."""
    bin_dir = binaries()
    home = state_dir / "prometheus"
    for sub in ("targets", "rules", "data"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    port = port or argv.free_ports(1)[0]
    cfg = yaml.safe_dump(config(home / "targets")).replace("__SELF__", f"127.0.0.1:{port}")
    (home / "prometheus.yml").write_text(cfg)
    check = subprocess.run(
        [str(bin_dir / "promtool"), "check", "config", str(home / "prometheus.yml")], capture_output=True, text=True
    )
    if check.returncode != 0:
        raise ServerFailed(f"promtool rejected the generated config:\n{check.stdout}{check.stderr}")
    log = state_dir / "logs" / "prometheus.log"
    url = f"http://127.0.0.1:{port}"
    import httpx

    with stopped_on_failure() as procs:
        proc = spawn(
            argv.prometheus(bin_dir / "prometheus", home / "prometheus.yml", home / "data", port),
            log,
            cwd=home,
        )
        procs.append(proc)
        if procs_out is not None:
            procs_out.append(proc)
        waited = wait_healthy(
            "prometheus", proc, lambda: httpx.get(f"{url}/-/ready", timeout=1).status_code == 200, log, timeout=60
        )
    return {
        "prometheus": {
            "url": url,
            "config": str(home / "prometheus.yml"),
            "targets_dir": str(home / "targets"),
            "rules_dir": str(home / "rules"),
            "started_in_s": round(waited, 2),
        },
        "pids": {"prometheus": proc.pid},
        "logs": {"prometheus": str(log)},
        "tools": {"promtool": str(bin_dir / "promtool")},
    }
