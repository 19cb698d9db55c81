"""Stopping what a component left: its process group, and what it started in sessions of its own."""

from __future__ import annotations

import os
import signal
import sys
import time

import psutil

from fp_local import procs

# A leader that starts a child in a session of its own (as BentoML's arbiter starts its workers).
LEADER = """
import subprocess, sys, time
child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
print(child.pid, flush=True)
time.sleep(300)
"""


def test_a_killed_leaders_child_in_its_own_session_is_stopped_by_its_owner_mark(tmp_path):
    log = tmp_path / "leader.log"
    rec = procs.start([sys.executable, "-c", LEADER], log, owner=f"{tmp_path}:serving")
    deadline = time.monotonic() + 20
    while not log.read_text().strip():
        assert time.monotonic() < deadline, "the leader never started its child"
        time.sleep(0.05)
    child = psutil.Process(int(log.read_text().split()[0]))
    assert os.getsid(child.pid) != os.getsid(rec["pid"])  # out of reach of the group
    os.kill(rec["pid"], signal.SIGKILL)
    rec["_proc"].wait(10)
    assert child.is_running() and procs.marked(f"{tmp_path}:serving") == [child]
    forced = procs.stop({k: v for k, v in rec.items() if k != "_proc"}, timeout=5)
    assert not child.is_running() or child.status() == psutil.STATUS_ZOMBIE
    assert forced and "outside its group" in forced[-1]
    assert procs.marked(f"{tmp_path}:serving") == []
