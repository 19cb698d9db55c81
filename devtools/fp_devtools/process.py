"""Start servers as detached processes with a log file, wait on their health, stop them."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path


class ServerFailed(RuntimeError):
    """A server exited or never became healthy; the message names it and carries the tail of its log."""

    def __init__(self, message: str, server: str | None = None, log: Path | None = None):
        super().__init__(message)
        self.server = server
        self.log = log

    def report(self, name: str) -> str:
        """Which server did not start (`name` unless the error knows better), why, and its log's end."""
        text = f"the {self.server or name} dev server did not start: {self}"
        if self.log is not None and str(self.log) not in text:
            text += f"\nlast lines of {self.log}:\n{log_tail(self.log)}"
        first = first_error(self.log) if self.log is not None else None
        if first and first not in text.splitlines()[-40:]:
            text += f"\nits first error (above the last lines): {first}"
        return text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def first_error(path: Path) -> str | None:
    """The log's first ERROR or FATAL line with the exception it names: a server that fails prints why
    first, then pages of its shutdown."""
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return None
    for i, line in enumerate(lines):
        if " ERROR " in line or " FATAL " in line or line.startswith(("ERROR", "FATAL")):
            after = lines[i + 1] if i + 1 < len(lines) else ""
            cause = after.strip() if after and not after.startswith(("[", "\t", " ")) else ""
            return f"{line.strip()} {cause}".strip()
    return None


def spawn(argv: list[str], log: Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> subprocess.Popen:
    """Start argv in its own session so that it outlives us and `down` can stop its whole group."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        return subprocess.Popen(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=cwd,
            start_new_session=True,
        )


def wait_healthy(
    name: str, proc: subprocess.Popen | None, check: Callable[[], bool], log: Path, timeout: float = 60.0
) -> float:
    """Poll `check` until it is true; fail early if the process dies. Returns seconds waited."""
    start = time.monotonic()
    delay = 0.05
    while True:
        if proc is not None and proc.poll() is not None:
            raise ServerFailed(
                f"{name} exited with code {proc.returncode} before it was healthy; last lines of {log}:\n"
                f"{log_tail(log)}",
                server=name,
                log=log,
            )
        try:
            if check():
                return time.monotonic() - start
        except Exception:  # noqa: BLE001 - any failure of the probe means "not yet"
            pass
        if time.monotonic() - start > timeout:
            raise ServerFailed(
                f"{name} not healthy after {timeout:.0f} s; last lines of {log}:\n{log_tail(log)}", server=name, log=log
            )
        time.sleep(delay)
        delay = min(delay * 1.5, 0.5)


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child of ours still answers kill(0); look at its state.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


def stop(pid: int, timeout: float = 15.0) -> None:
    """SIGTERM the process group, then SIGKILL what is left after `timeout`."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(pid, sig)
        except ProcessLookupError:
            return
        except PermissionError:
            os.kill(pid, sig)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not alive(pid):
                try:
                    os.waitpid(pid, os.WNOHANG)
                except ChildProcessError:
                    pass
                return
            time.sleep(0.1)


@contextmanager
def stopped_on_failure() -> Iterator[list[subprocess.Popen]]:
    """Collect the processes a server start spawns; if the start fails, stop them all.

    A half-started server would otherwise keep running without being recorded in env.json,
    where `down` could never find it.
    """
    procs: list[subprocess.Popen] = []
    try:
        yield procs
    except BaseException:
        for proc in reversed(procs):
            stop(proc.pid)
        raise
