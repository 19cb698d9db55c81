"""Start the local mode's processes, and stop exactly those: by pid, process group and start time.

Every process starts in its own session (fp_devtools.process.spawn), so its pid is also its process
group id and Ctrl-C in the terminal reaches only `fraudpipe up`, which then stops them in order.
A stop sends SIGTERM to the group's leader first and waits (the streaming job takes its savepoint
then; SIGTERM to its whole group would kill its JVM under it), then SIGTERM and SIGKILL to whatever
is left in the group. A recorded pid is acted on only while its start time is the recorded one,
so a pid reused by another program after a reboot is never signalled.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from fp_devtools.process import spawn

# Set in every process the local mode spawns, and so inherited by all it starts in turn: BentoML's
# workers start sessions of their own (and keep the listening socket), out of reach of the group.
OWNER_ENV = "FRAUDPIPE_LOCAL_OWNER"


def start(
    argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None, owner: str | None = None
) -> dict:
    """Spawn `argv` in its own session; returns its record: pid, start time, log, command, owner mark."""
    if owner is not None:
        env = {**(env if env is not None else os.environ), OWNER_ENV: owner}
    proc = spawn(argv, log, env=env, cwd=cwd)
    rec = {"pid": proc.pid, "started": start_time(proc.pid), "log": str(log), "argv": argv, "_proc": proc}
    if owner is not None:
        rec["owner"] = owner
    return rec


def marked(owner: str) -> list[psutil.Process]:
    """Live processes carrying `owner` in their environment (those a component left, whatever their session)."""
    out = []
    me = os.getpid()
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.pid == me or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get(OWNER_ENV) == owner:
                out.append(proc)
        except psutil.Error:
            continue
    return out


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except psutil.Error:
        return None


def _ours(rec: dict) -> bool:
    """The recorded process still runs (not a zombie) and is the one we started."""
    pid = rec.get("pid")
    if not pid:
        return False
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return False
        started = rec.get("started")
        return started is None or abs(proc.create_time() - started) < 1.0
    except psutil.Error:
        return False


def alive(rec: dict) -> bool:
    return _ours(rec)


def group_members(pgid: int) -> list[int]:
    """Live processes (zombies left out) whose process group is `pgid`."""
    out = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.info["status"] != psutil.STATUS_ZOMBIE and os.getpgid(proc.info["pid"]) == pgid:
                out.append(proc.info["pid"])
        except (ProcessLookupError, psutil.Error):
            continue
    return out


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return predicate()


def stop(rec: dict, timeout: float = 30.0) -> list[str]:
    """Stop a recorded process, its group and whatever carries its owner mark; returns what had to be
    forced (empty: a clean stop)."""
    pid = rec.get("pid")
    if not pid:
        return []
    forced: list[str] = []
    # The group exists only if its leader is ours or was: a group id is not reused while any member lives.
    if _ours(rec):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        if not _wait(lambda: not _ours(rec), timeout):
            forced.append(f"pid {pid} did not stop within {timeout:.0f} s of SIGTERM")
        _reap(pid)
        group = True
    else:
        group = rec.get("started") is None or bool(group_members(pid))
    for sig, wait in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
        members = group_members(pid) if group else []
        if not members:
            break
        if sig == signal.SIGKILL:
            forced.append(f"SIGKILL to {len(members)} process(es) left in group {pid}")
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            break
        _wait(lambda: not group_members(pid), wait)
    _reap(pid)
    if rec.get("owner"):
        forced += _stop_marked(rec["owner"])
    return forced


def _stop_marked(owner: str) -> list[str]:
    left = marked(owner)
    if not left:
        return []
    for proc in left:
        try:
            proc.terminate()
        except psutil.Error:
            pass
    _, alive_ = psutil.wait_procs(left, timeout=5.0)
    for proc in alive_:
        try:
            proc.kill()
        except psutil.Error:
            pass
    psutil.wait_procs(alive_, timeout=5.0)
    return [f"stopped {len(left)} process(es) left by {owner.rsplit(':', 1)[-1]} outside its group"]


def tail(log: str | Path, lines: int = 20) -> str:
    """The last lines of a component's log (what `status` shows of one that keeps dying)."""
    try:
        return "\n".join(Path(log).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return f"(no log at {log})"


def port_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.3)
        return s.connect_ex((host, port)) == 0


def port_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether we could listen on `port` now."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
        return True


def who_listens(port: int) -> str:
    """'pid 123 (java)' of the process listening on `port`, when this user may know it."""
    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.laddr and conn.laddr.port == port and conn.status == psutil.CONN_LISTEN and conn.pid:
                try:
                    name = psutil.Process(conn.pid).name()
                except psutil.Error:
                    name = "?"
                return f"pid {conn.pid} ({name})"
    except (psutil.Error, OSError):
        pass
    return "another process"


def run_quiet(argv: list[str], timeout: float = 30.0) -> subprocess.CompletedProcess:
    return subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
