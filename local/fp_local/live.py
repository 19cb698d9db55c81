"""The terminal's live view while `fraudpipe up` runs in the foreground (rich Live).

It shows what the page shows, read each second from the page's server (/api/state): components
and their health, transactions and alerts per second, decision latency, dead letters, the last
checkpoint, and the newest alerts with the features that drove them.
"""

from __future__ import annotations

import time
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

STATE_COLORS = {"ok": "green", "running": "green", "done": "green", "starting": "yellow", "down": "red"}


def _rate(v: float | None) -> str:
    if v is None:
        return "–"
    return f"{v:,.0f}" if v >= 10 else f"{v:.1f}"


def _ms(v: float | None) -> str:
    return "–" if v is None else f"{v:.1f} ms"


def _int(v: float | None) -> str:
    return "–" if v is None else f"{v:,.0f}"


def render(snap: dict[str, Any] | None, ui_url: str, waiting: str = "") -> Group:
    if not snap:
        return Group(Text(f"waiting for the page's server at {ui_url} ... {waiting}", style="yellow"))
    f = snap.get("figures") or {}
    header = Text.assemble(
        ("FraudPipeline ", "bold"),
        (str(snap.get("pipeline")), "bold cyan"),
        f"   model {snap.get('model_tag')}  threshold {float(snap.get('threshold') or 0):.4f}"
        f"  {snap.get('scoring_mode')} scoring  checkpoints every {snap.get('checkpoint_interval')}",
    )
    comps = Text()
    for c in snap.get("components") or []:
        color = STATE_COLORS.get(c["state"], "white")
        comps.append(f"{c['name']} ", style="bold")
        comps.append(f"{c['state']}   ", style=color)
    links = snap.get("links") or {}
    if links.get("ingest API"):
        comps.append(f"\ningest API {links['ingest API']}", style="dim")
    cp = snap.get("checkpoint") or {}
    cp_text = "–"
    if cp.get("last_completed_at"):
        cp_text = f"{max(0.0, time.time() - cp['last_completed_at']):.0f} s ago (#{cp.get('completed')})"
    # Label-value pairs in a grid: readable in an 80-column terminal.
    figures = Table.grid(padding=(0, 3))
    for _ in range(3):
        figures.add_column()
    cells = [
        ("transactions/s", _rate(f.get("tx_per_s")), ""),
        ("alerts/s", _rate(f.get("alerts_per_s")), "red"),
        ("dead letters", _int(f.get("dead_letters")), ""),
        ("latency p50", _ms(f.get("latency_p50_ms")), ""),
        ("latency p99", _ms(f.get("latency_p99_ms")), ""),
        ("last checkpoint", cp_text, ""),
        ("scored", _int(f.get("scored")), ""),
        ("alerts", _int(f.get("alerts")), "red"),
        ("received", _int(f.get("received")), ""),
    ]
    row = []
    for label, value, style in cells:
        row.append(Text.assemble((f"{label} ", "dim"), (value, style or "bold")))
        if len(row) == 3:
            figures.add_row(*row)
            row = []
    alerts = Table.grid(padding=(0, 1))
    alerts.add_column(overflow="fold")
    for a in (snap.get("alerts") or [])[:6]:
        t = a.get("transaction") or {}
        drivers = ", ".join(f"{d['feature']}={d['value']:g}" for d in (a.get("drivers") or [])[:3])
        alerts.add_row(
            Text.assemble(
                (f"{float(a.get('score') or 0):.3f} ", "bold red"),
                f"tx {t.get('transaction_id')}  card {t.get('customer_id')}  terminal {t.get('terminal_id')}  ",
                (f"{float(t.get('amount') or 0):,.2f}", "bold"),
                (f"  {str(a.get('decided_at', ''))[11:19]}", "dim"),
            )
        )
        if drivers:
            alerts.add_row(Text(f"   driven by {drivers}", style="dim"))
    firing = [a for a in snap.get("prometheus_alerts") or [] if a.get("state") == "firing"]
    parts = [
        header,
        Panel(comps, title="components (fraudpipe status: pids, URLs, logs)", title_align="left", border_style="dim"),
        Panel(
            figures, title="figures (the job's own counters, since it started)", title_align="left", border_style="dim"
        ),
        Panel(
            alerts
            if snap.get("alerts")
            else Text("no alert yet: they show when the checkpoint covering them completes", style="dim"),
            title="newest committed alerts",
            title_align="left",
            border_style="red" if snap.get("alerts") else "dim",
        ),
    ]
    if firing:
        parts.append(Text("Prometheus rules firing: " + ", ".join(a["name"] for a in firing), style="yellow"))
    parts.append(
        Text(f"page: {ui_url}   Ctrl-C stops everything (`fraudpipe up --detach` leaves it running)", style="dim")
    )
    return Group(*parts)


def run(ui_url: str, console, keep_going) -> None:
    """Refresh the view every second until `keep_going()` is false (or Ctrl-C)."""
    import httpx
    from rich.live import Live

    snap = None
    with (
        httpx.Client(timeout=2) as client,
        Live(render(None, ui_url), console=console, refresh_per_second=4, screen=False, transient=False) as live,
    ):
        while keep_going():
            try:
                snap = client.get(f"{ui_url}/api/state").json()
            except (httpx.HTTPError, ValueError):
                pass
            live.update(render(snap, ui_url))
            time.sleep(1.0)
