"""Quality metrics of the handbook: AUC ROC, average precision and card precision@k.

Written with numpy/pandas so training needs no scikit-learn; the tests check the first two
against scikit-learn.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def roc_auc(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    y = np.asarray(y_true).astype(bool)
    pos, neg = int(y.sum()), int((~y).sum())
    if pos == 0 or neg == 0:
        raise ValueError("AUC needs both classes in y_true")
    ranks = pd.Series(np.asarray(scores, dtype=np.float64)).rank(method="average").to_numpy()
    return float((ranks[y].sum() - pos * (pos + 1) / 2) / (pos * neg))


def average_precision(y_true: np.ndarray, scores: np.ndarray) -> float:
    """Sum over score thresholds of (recall step) x precision, as scikit-learn defines it."""
    y = np.asarray(y_true).astype(np.int64)
    s = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-s, kind="stable")
    y, s = y[order], s[order]
    last_of_tie = np.r_[np.flatnonzero(np.diff(s) != 0), len(s) - 1]
    tps = np.cumsum(y)[last_of_tie]
    fps = (last_of_tie + 1) - tps
    if tps[-1] == 0:
        return 0.0
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def card_precision_top_k(frame: pd.DataFrame, scores: np.ndarray, k: int = 100) -> tuple[float, list[float], list[int]]:
    """The handbook's CP@k over the days of `frame` (columns timestamp, customer_id, fraud).

    Per day in order: drop cards found compromised on earlier days, take each card's highest
    score and label, rank cards by score, and count the frauds among the top k, divided by k
    (always k, even when fewer compromised cards exist). Returns (mean over days, per-day
    values, compromised cards left per day).
    """
    df = pd.DataFrame(
        {
            "day": pd.to_datetime(frame["timestamp"]).dt.normalize().to_numpy(),
            "card": frame["customer_id"].to_numpy(),
            "fraud": frame["fraud"].to_numpy(),
            "score": np.asarray(scores, dtype=np.float64),
        }
    )
    detected: set = set()
    per_day: list[float] = []
    remaining: list[int] = []
    for _, day in df.groupby("day", sort=True):
        day = day[~day["card"].isin(detected)]
        cards = day.groupby("card", sort=True).agg(score=("score", "max"), fraud=("fraud", "max"))
        remaining.append(int(cards["fraud"].sum()))
        top = cards.sort_values("score", ascending=False, kind="stable").head(k)
        hits = top.index[top["fraud"] == 1]
        per_day.append(len(hits) / k)
        detected.update(hits)
    return float(np.mean(per_day)) if per_day else 0.0, per_day, remaining
