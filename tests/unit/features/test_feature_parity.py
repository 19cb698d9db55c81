"""One feature definition, two implementations: offline (vectorised) and online (per key) agree
bit for bit, and both match the handbook's pandas rolling-window procedure."""

from __future__ import annotations

import heapq
from collections import Counter

import numpy as np
import pandas as pd
from feature_helpers import handbook_features

from fraudpipeline.features import FEATURE_NAMES, LABEL_DELAY_DAYS
from fraudpipeline.features.offline import compute_features, event_time_us
from fraudpipeline.features.online import US_PER_DAY, CustomerState, LabelOutcome, TerminalState, feature_vector


def run_online(df: pd.DataFrame, label_delay_us: int, outcomes: Counter | None = None) -> np.ndarray:
    """Replay transactions and their labels through per-key states, as the streaming job does.

    Each label is released `label_delay_us` after its transaction, before any transaction
    of the same instant (so a transaction exactly `delay` later already sees it).
    """
    times = event_time_us(df["timestamp"])
    customers = df["customer_id"].to_numpy()
    terminals = df["terminal_id"].to_numpy()
    amounts = df["amount"].to_numpy()
    frauds = df["fraud"].to_numpy()
    tx_ids = df["transaction_id"].astype(str).to_numpy()
    cust_state: dict = {}
    term_state: dict = {}
    pending: list[tuple[int, int]] = []  # (release time, row) min-heap of labels
    out = np.empty((len(df), len(FEATURE_NAMES)))
    for i in range(len(df)):
        t = int(times[i])
        while pending and pending[0][0] <= t:
            _, j = heapq.heappop(pending)
            outcome = term_state[terminals[j]].add_label(int(times[j]), tx_ids[j], int(frauds[j]))
            if outcomes is not None:
                outcomes[outcome] += 1
        cs = cust_state.setdefault(customers[i], CustomerState())
        ts = term_state.setdefault(terminals[i], TerminalState())
        out[i] = feature_vector(t, amounts[i], cs.update(t, amounts[i], tx_ids[i]), ts.update(t, tx_ids[i]))
        heapq.heappush(pending, (t + label_delay_us, i))
    return out


def test_online_equals_offline(sample_transactions):
    df = sample_transactions
    offline = compute_features(df)
    assert list(offline.columns) == FEATURE_NAMES
    outcomes: Counter = Counter()
    online = run_online(df, LABEL_DELAY_DAYS * US_PER_DAY, outcomes)
    # Every label comes after its transaction, so every one is applied.
    assert outcomes == {LabelOutcome.APPLIED: outcomes.total()}
    diff = np.abs(online - offline.to_numpy())
    worst = {name: float(diff[:, k].max()) for k, name in enumerate(FEATURE_NAMES)}
    assert max(worst.values()) == 0.0, worst  # bit-identical: same additions in the same order
    # The sample must exercise the windows: full 30-day histories and labelled risk.
    assert offline["customer_nb_tx_30day"].max() >= 30
    assert offline["terminal_nb_tx_30day"].max() >= 10
    assert (offline["terminal_risk_30day"] > 0).sum() >= 100


def test_offline_matches_handbook_rolling_windows(sample_transactions):
    df = sample_transactions
    ref = handbook_features(df)
    ours = compute_features(df)
    for name in FEATURE_NAMES:
        np.testing.assert_allclose(ours[name].to_numpy(), ref[name].to_numpy(), rtol=0, atol=1e-9, err_msg=name)


def test_late_labels_lower_the_online_risk(sample_transactions):
    """Labels that come later than the delay are not yet counted: the online risk is lower."""
    df = sample_transactions.iloc[:20_000]
    offline = compute_features(df)
    late = run_online(df, (LABEL_DELAY_DAYS + 3) * US_PER_DAY)
    k = FEATURE_NAMES.index("terminal_risk_7day")
    assert (late[:, k] <= offline.iloc[:, k].to_numpy() + 1e-12).all()
    assert (late[:, k] < offline.iloc[:, k].to_numpy()).any()
    counts = FEATURE_NAMES.index("terminal_nb_tx_7day")  # counts do not need labels
    np.testing.assert_array_equal(late[:, counts], offline.iloc[:, counts].to_numpy())
