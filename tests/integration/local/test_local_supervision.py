"""A local pipeline heals itself: every component SIGKILLed in turn while transactions flow comes back
by itself, and once the traffic ends the committed alerts are the offline model's decisions (those of
an undisturbed run: none lost, none twice) and every input is accounted for; a component that keeps
dying is reported with its log's last lines, and `up` on the partly running pipeline starts what is
missing while the rest keeps running.

Traffic goes through the ingest API (`fraudpipe replay --via http`), so killing the ingest API, Kafka
or the job is felt by the sender as it would be by a user's.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from datetime import date

import pytest
from local_helpers import FRAUDPIPE, REPO, Local, offline_alerts, tx_id, write_pipeline

from fp_devtools.process import free_port

pytestmark = pytest.mark.integration

SENT = 24_000
RATE = 150  # transactions/s: the kills below all fall inside the traffic
FIRST_DAY = date(2018, 8, 8)
KILL_ORDER = ("stream", "kafka", "ingest", "serving", "prometheus", "ui")
RECOVERY_TIMEOUT_S = 240


@pytest.fixture(scope="module")
def local(env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local-heal")
    # Its own model tag: test_local_up.py checks that `up` trains a tag missing from the session's store.
    pipeline = write_pipeline(
        tmp / "pipeline.yaml", "itheal", free_port(), checkpoint="2s", tag="fraud-xgb:itheal", scores=True
    )
    lp = Local(pipeline, tmp / "state", env, free_port(), tmp / "commands.log")
    try:
        lp.up()
        yield lp
    finally:
        if (lp.state_dir / "local.json").exists():
            lp.run("down", "--state-dir", str(lp.state_dir), timeout=300, check=False)


def _status(local: Local) -> dict[str, dict]:
    done = local.run("status", "--state-dir", str(local.state_dir), "--json", check=False)
    return {c["component"]: c for c in json.loads(done.stdout)["components"]}


def _wait_back(local: Local, name: str, old_pid: int, restarts_before: int) -> float:
    """Seconds until `name` runs again as a new process, healthy, with one more restart counted."""
    started = time.monotonic()
    while True:
        row = _status(local).get(name) or {}
        if row.get("health") == "ok" and row.get("pid") != old_pid and row.get("restarts", 0) > restarts_before:
            return time.monotonic() - started
        assert row.get("health") != "failed", f"{name} was given up on: {row.get('log_tail')}"
        assert time.monotonic() - started < RECOVERY_TIMEOUT_S, f"{name} not back after {RECOVERY_TIMEOUT_S} s: {row}"
        time.sleep(1)


def _read_ids(local: Local, role: str) -> list[str]:
    from fp_local.alerts import read

    topic = local.record["topics"][role]
    out = []
    for record in read(local.bootstrap, topic):
        tx = record.get("transaction") if isinstance(record.get("transaction"), dict) else record
        out.append(str(tx.get("transaction_id")))
    return out


def test_every_component_killed_while_traffic_flows_comes_back_and_nothing_is_lost_or_doubled(local):
    from fraudpipeline.data import resolve_transactions

    ingest = local.record["components"]["ingest"]["url"]
    replay = subprocess.Popen(
        [*FRAUDPIPE, "replay", "-f", str(local.file), "--via", "http", ingest]
        + ["--rate", str(RATE), "--limit", str(SENT), "--json"],
        env=local.env,
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    back: dict[str, float] = {}
    try:
        time.sleep(10)  # traffic flows
        for name in KILL_ORDER:
            row = _status(local)[name]
            assert row["health"] == "ok", row
            os.kill(row["pid"], signal.SIGKILL)
            back[name] = round(_wait_back(local, name, row["pid"], row["restarts"]), 1)
            assert replay.poll() in (None, 0), replay.stderr.read()[-3000:] if replay.stderr else ""
        killed_before_end = replay.poll() is None
        out, err = replay.communicate(timeout=900)
    finally:
        if replay.poll() is None:
            replay.kill()
    assert replay.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["transactions"] == SENT
    assert killed_before_end, f"the traffic ended before the last kill: raise SENT (recoveries {back})"

    table, _ = resolve_transactions(None, FIRST_DAY, None)
    sent = {tx_id(v) for v in table["transaction_id"].iloc[:SENT]}
    deadline = time.monotonic() + 300
    while True:
        scored, dead = _read_ids(local, "scores"), _read_ids(local, "deadLetter")
        if sent <= set(scored) | set(dead) or time.monotonic() > deadline:
            break
        time.sleep(3)
    assert not sent - set(scored) - set(dead), f"{len(sent - set(scored) - set(dead))} transactions unaccounted"
    assert len(scored) == len(set(scored)), "a transaction was scored twice"
    # A request cut by a restart is sent again: the pipeline refuses the repeat as a repeated id.
    assert set(dead) <= set(scored), "a transaction went to the dead letters only"
    assert set(scored) == sent

    alerts = [a["transaction"]["transaction_id"] for a in local.alerts()]
    assert len(alerts) == len(set(alerts)), "an alert was committed twice"
    expected = offline_alerts(local.record["model"]["export"], FIRST_DAY, SENT)
    assert len(expected) > 20
    assert set(alerts) == expected
    print(
        f"\n{SENT} transactions at {RATE}/s through the ingest API, each component SIGKILLed in turn; seconds "
        f"until each was back: {back}; {len(alerts)} alerts = the offline model's; {len(dead)} repeats refused"
    )


def test_a_component_that_keeps_dying_is_reported_and_up_starts_what_is_missing(local):
    before = _status(local)
    ui = before["ui"]
    port = int(ui["url"].rsplit(":", 1)[1])
    blocker = socket.socket()
    blocker.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        os.kill(ui["pid"], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while True:  # take the page's port the moment it is free: every restart then fails to listen
            try:
                blocker.bind(("127.0.0.1", port))
                break
            except OSError:
                assert time.monotonic() < deadline, f"port {port} not freed by the killed page"
                time.sleep(0.01)
        blocker.listen()
        deadline = time.monotonic() + 180
        while (row := _status(local)["ui"])["health"] != "failed":
            assert time.monotonic() < deadline, f"the page was not given up on: {row}"
            time.sleep(1)
        shown = local.run("status", "--state-dir", str(local.state_dir), check=False)
        assert shown.returncode == 3
        assert "keeps dying" in shown.stdout and "address already in use" in shown.stdout.lower(), shown.stdout
        assert row["restarts"] >= 4 and row["last_exit"]["code"] not in (None, 0)
    finally:
        blocker.close()

    # The supervisor gone too: `up` starts a new one, which adopts what runs and starts the page.
    os.kill(before["supervisor"]["pid"], signal.SIGKILL)
    done = local.up()
    assert "starting what is missing" in done.stderr
    after = _status(local)
    assert {n: r["health"] for n, r in after.items()} == dict.fromkeys(after, "ok")
    for name in ("kafka", "stream", "ingest", "serving", "prometheus"):
        assert after[name]["pid"] == before[name]["pid"], f"{name} was restarted, not adopted"
    assert after["ui"]["pid"] != ui["pid"] and after["supervisor"]["pid"] != before["supervisor"]["pid"]
    # And the whole stops as before.
    local.down()
    assert not any(p for p in _status_after_down(local))


def _status_after_down(local: Local) -> list[str]:
    from fp_local import procs

    return [n for n, c in (local.record.get("components") or {}).items() if procs.alive(c)]
