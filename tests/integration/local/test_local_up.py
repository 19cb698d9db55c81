"""`fraudpipe up` end to end on this machine: real Kafka, ingest API, bentoml serve, the PyFlink job,
Prometheus and the page's server, each its own process, driven only through the `fraudpipe` commands.

One pipeline for the module, in test order: `up --detach --replay` of 20,000 handbook transactions
must commit exactly the alerts the offline model decides on the same transactions; the live page
in a real headless Chromium shows the chart and an alert pushed after it loaded; README's demo
(normal purchases raise nothing, a fraudulent one an alert within a second of the next
checkpoint); then `down` leaves no process and no port, and a second `up` resumes from the
savepoint without re-alerting anything.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import threading
import time
from datetime import date

import httpx
import pytest
from local_helpers import ARTIFACTS, FRAUDPIPE, REPO, Local, offline_alerts, transaction, write_pipeline

from fp_devtools.process import free_port

pytestmark = pytest.mark.integration

REPLAYED = 20_000
REPLAY_FROM = date(2018, 8, 8)


@pytest.fixture(scope="module")
def local(env, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("local-up")
    pipeline = write_pipeline(tmp / "pipeline.yaml", "itlocal", free_port(), checkpoint="2s")
    lp = Local(pipeline, tmp / "state", env, free_port(), tmp / "commands.log")
    started = time.monotonic()
    try:
        done = lp.up("--replay", "--rate", "max", "--replay-limit", str(REPLAYED))
        print(
            f"\nup --detach --replay (model trained into an empty store): {time.monotonic() - started:.0f} s\n"
            f"{done.stderr[-2500:]}"
        )
        yield lp
    finally:
        if (lp.state_dir / "local.json").exists():
            lp.run("down", "--state-dir", str(lp.state_dir), timeout=300, check=False)


def test_up_trains_the_missing_model_tag_and_runs_every_component(local):
    record = local.record
    assert record["model"]["tag"] == "fraud-xgb:itlocal" and record["model"]["trained_now"] is True
    status = json.loads(local.run("status", "--state-dir", str(local.state_dir), "--json").stdout)
    health = {c["component"]: c["health"] for c in status["components"]}
    assert {k: v for k, v in health.items() if k != "replay"} == {
        "kafka": "ok",
        "prometheus": "ok",
        "serving": "ok",
        "ingest": "ok",
        "stream": "ok",
        "ui": "ok",
        "supervisor": "ok",
    }
    # The spec's settings reached each process.
    model = httpx.get(f"{record['components']['serving']['url']}/v1/model", timeout=5).json()
    assert model["tag"] == "fraud-xgb:itlocal"
    assert httpx.get(f"{record['components']['ingest']['url']}/readyz", timeout=5).status_code == 200
    # Prometheus scrapes the three and loaded the operator's rules.
    prom = record["components"]["prometheus"]["url"]
    from fp_local.plan import alert_rules
    from fraudpipeline.spec import load_pipeline

    loaded = httpx.get(f"{prom}/api/v1/rules", timeout=5).json()["data"]["groups"]
    wanted = alert_rules(load_pipeline(local.file))["groups"]
    assert [(g["name"], len(g["rules"])) for g in loaded] == [(g["name"], len(g["rules"])) for g in wanted]
    deadline = time.monotonic() + 60
    while True:
        targets = httpx.get(f"{prom}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
        up = {t["labels"].get("component") for t in targets if t["health"] == "up"}
        if {"model", "stream", "ingest"} <= up or time.monotonic() > deadline:
            break
        time.sleep(1)
    assert {"model", "stream", "ingest"} <= up, targets


def test_replay_commits_exactly_the_offline_models_alerts(local):
    expected = offline_alerts(local.record["model"]["export"], REPLAY_FROM, REPLAYED)
    assert len(expected) > 20
    deadline = time.monotonic() + 600
    while True:
        scored = (local.page_state()["figures"] or {}).get("scored") or 0
        if scored >= REPLAYED:
            break
        assert time.monotonic() < deadline, f"only {scored} of {REPLAYED} transactions scored"
        time.sleep(2)
    local.wait_checkpoints(2, after=time.time())
    alerts = local.alerts()
    ids = [a["transaction"]["transaction_id"] for a in alerts]
    assert len(ids) == len(set(ids)), "an alert was committed twice"
    assert set(ids) == expected
    replay = json.loads((local.state_dir / "logs" / "replay.log").read_text().strip().splitlines()[-1])
    assert replay["transactions"] == REPLAYED
    print(f"\n{REPLAYED} transactions replayed, {len(alerts)} alerts committed = the offline model's decisions")


def test_live_page_in_headless_chromium(local, tmp_path):
    from cdp import Chromium, chromium_path

    binary = chromium_path()
    if binary is None:
        pytest.skip("Chromium is not installed: `make browser` (part of `make test`) installs Debian's chromium")
    browser = Chromium(binary, tmp_path / "profile", tmp_path / "chromium.log")
    try:
        browser.navigate(local.ui)
        browser.wait_for("document.body.dataset.ready === '1'", 30, "its first snapshot")
        browser.wait_for("Number(document.getElementById('chart').dataset.points) > 10", 30, "the chart's points")
        drawn = browser.evaluate(
            "(() => { const c = document.getElementById('chart'); const d = c.getContext('2d')"
            ".getImageData(0, 0, c.width, c.height).data; let n = 0;"
            " for (let i = 3; i < d.length; i += 4) if (d[i] > 0) n++; return n; })()"
        )
        assert drawn > 1000, f"the chart's canvas is nearly empty ({drawn} pixels drawn)"
        assert browser.evaluate("document.getElementById('model-tag').textContent") == "fraud-xgb:itlocal"
        assert browser.evaluate("document.getElementById('f-tx').textContent") not in ("", "–")
        # An alert pushed after the page loaded: the page must show it without a reload.
        browser.evaluate("window.__loadedOnce = 'yes'")
        before = int(browser.evaluate("document.body.dataset.alerts") or 0)
        local.send(transaction("page-f1", "2018-08-05T10:00:00Z", "c-page", "t-page", 2450.0))
        browser.wait_for("!!document.querySelector('#alerts li[data-tx=\"page-f1\"]')", 60, "the pushed alert")
        assert browser.evaluate("window.__loadedOnce") == "yes", "the page reloaded"
        assert int(browser.evaluate("document.body.dataset.alerts")) >= min(before + 1, 50)
        text = browser.evaluate("document.querySelector('#alerts li[data-tx=\"page-f1\"]').innerText")
        assert "tx_amount = 2450" in text and "card c-page" in text
        assert browser.evaluate("document.getElementById('conn').textContent") == "live"
        time.sleep(1.5)  # one more tick drawn, the alert's highlight settled
        shot = browser.screenshot(tmp_path / "live-page.png")
    finally:
        browser.close()
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    kept = ARTIFACTS / "live-page.png"
    shutil.copyfile(shot, kept)
    print(f"\nscreenshot of the live page: {kept}")
    assert shot.stat().st_size > 20_000
    assert not [m for m in browser.console if m.startswith("exception")], browser.console


class _Follow:
    """`fraudpipe alerts --follow --json` in the background; each line timestamped as it arrives."""

    def __init__(self, local: Local):
        self.proc = subprocess.Popen(
            [*FRAUDPIPE, "alerts", "--follow", "--json", "--state-dir", str(local.state_dir)],
            env=local.env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.lines: list[tuple[float, dict]] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.lines.append((time.time(), json.loads(line)))

    def seen(self, tx_id: str) -> list[tuple[float, dict]]:
        return [(t, a) for t, a in self.lines if a["transaction"]["transaction_id"] == tx_id]

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(10)


def test_readme_demo_normal_purchases_raise_nothing_a_fraud_raises_an_alert(local):
    demo = REPO / "docs" / "demo"
    follow = _Follow(local)
    try:
        local.send(str(demo / "history.jsonl"))
        local.send("--labels", str(demo / "labels.jsonl"))
        local.send(transaction("demo-n1", "2018-08-04T12:00:00Z", "c-demo", "t-demo-shop1", 38.20))
        topic = local.record["topics"]["transactions"]
        body = {
            "records": [
                {
                    "key": "c-demo",
                    "value": json.loads(
                        transaction("demo-n2", "2018-08-04T12:30:00Z", "c-demo", "t-demo-shop2", 26.50)
                    ),
                }
            ]
        }
        url = f"{local.record['components']['ingest']['url']}/topics/{topic}"
        curl = subprocess.run(
            [
                "curl",
                "-sf",
                "-X",
                "POST",
                url,
                "-H",
                "content-type: application/vnd.kafka.json.v2+json",
                "-d",
                json.dumps(body),
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert curl.returncode == 0 and '"offsets"' in curl.stdout, curl
        normals_sent = time.time()
        local.wait_checkpoints(2, after=normals_sent)
        assert not follow.seen("demo-n1") and not follow.seen("demo-n2")
        assert not {"demo-n1", "demo-n2"} & {a["transaction"]["transaction_id"] for a in local.alerts()}

        local.send(transaction("demo-f1", "2018-08-04T13:05:00Z", "c-demo", "t-demo-77", 1890.00))
        deadline = time.monotonic() + 60
        while not follow.seen("demo-f1"):
            assert time.monotonic() < deadline, "no alert for the fraudulent transaction"
            time.sleep(0.05)
    finally:
        follow.stop()
    seen_at, alert = follow.seen("demo-f1")[0]
    assert alert["features"]["terminal_risk_1day"] == 1.0  # the terminal's three frauds, confirmed
    assert alert["features"]["customer_nb_tx_7day"] >= 7 and alert["score"] >= alert["threshold"]
    decided_ms = _epoch_ms(alert["decided_at"])
    # The checkpoint that commits the alert is the first whose barrier reached the step after the
    # decision: one triggered after the decision surely is; one triggered before and completed after
    # may be (its barrier may have passed first). So it is the newest completed before the alert was
    # seen, and no later than the first triggered after the decision. Flink's REST API caches
    # checkpoint statistics for a few seconds: ask until it lists that one.
    deadline = time.monotonic() + 20
    while True:
        completed = local.checkpoints()
        later = [c for c in completed if c["trigger_timestamp"] >= decided_ms]
        if later or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert later, "Flink lists no checkpoint triggered after the alert was decided"
    surely = min(later, key=lambda c: c["trigger_timestamp"])
    before_seen = [c for c in completed if c["latest_ack_timestamp"] / 1000 <= seen_at]
    assert before_seen, "the alert was seen before any checkpoint completed"
    covering = max(before_seen, key=lambda c: c["latest_ack_timestamp"])
    assert covering["trigger_timestamp"] <= surely["trigger_timestamp"], (
        f"the alert was seen only after checkpoint {covering['id']}, later than {surely['id']} which commits it"
    )
    lag = seen_at - covering["latest_ack_timestamp"] / 1000
    print(
        f"\nalert demo-f1 printed by `fraudpipe alerts --follow` {lag:.3f} s after checkpoint {covering['id']} "
        f"completed ({(seen_at - decided_ms / 1000):.2f} s after it was decided; checkpoints every 2 s)"
    )
    assert 0 <= lag < 1.0, f"the alert showed {lag:.2f} s after the checkpoint that committed it"


def _epoch_ms(rfc3339: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00")).timestamp() * 1000


def test_down_leaves_nothing_and_a_second_up_resumes_without_realerting(local):
    import psutil

    from fp_local import procs

    record = local.record
    comps = record["components"]
    ports = [p for p in record["ports"].values()] + [comps["prometheus"]["port"]]
    before = local.alerts()
    local.down()
    for name, comp in comps.items():
        assert not procs.alive(comp), f"{name} (pid {comp['pid']}) still runs"
        assert not procs.group_members(comp["pid"]), f"{name}'s process group {comp['pid']} still has processes"
    busy = [p for p in ports if not procs.port_free(p)]
    assert not busy, f"ports still in use after down: {busy}"
    leftovers = [
        p for p in psutil.process_iter(["cmdline"]) if str(local.state_dir) in " ".join(p.info["cmdline"] or [])
    ]
    assert not leftovers, leftovers
    run = json.loads((local.state_dir / "stream" / "run.json").read_text())
    assert run["state"] == "STOPPED" and run["savepoint"], run

    started = time.monotonic()
    local.up()
    print(f"\nsecond up (warm): {time.monotonic() - started:.0f} s")
    run = json.loads((local.state_dir / "stream" / "run.json").read_text())
    assert run["restored_from"] and "savepoint" in run["restored_from"], run
    ready = time.time()
    local.wait_checkpoints(2, after=ready)
    after = local.alerts()
    assert len(after) == len(before), "the resumed job committed alerts again"
    local.send(transaction("resume-f1", "2018-08-05T11:00:00Z", "c-resume", "t-resume", 3100.0))
    deadline = time.monotonic() + 60
    while len(after) == len(before):
        assert time.monotonic() < deadline, "no alert after the resume"
        time.sleep(1)
        after = local.alerts()
    ids = lambda alerts: {a["transaction"]["transaction_id"] for a in alerts}  # noqa: E731
    assert ids(after) - ids(before) == {"resume-f1"} and len(after) == len(before) + 1
    local.down()
