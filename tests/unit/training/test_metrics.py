"""AUC/AP agree with scikit-learn; CP@k follows the handbook's definition."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from fraudpipeline.training.metrics import average_precision, card_precision_top_k, roc_auc
from fraudpipeline.training.model import f1_threshold


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auc_and_ap_match_scikit_learn_including_ties(seed):
    rng = np.random.default_rng(seed)
    y = rng.random(5_000) < 0.02
    scores = np.round(rng.random(5_000) + y * 0.3, 2)  # rounding makes many ties
    assert roc_auc(y, scores) == pytest.approx(roc_auc_score(y, scores), abs=1e-12)
    assert average_precision(y, scores) == pytest.approx(average_precision_score(y, scores), abs=1e-12)


def _day(day: str, rows: list[tuple[int, int, float]]) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"timestamp": pd.Timestamp(day) + pd.Timedelta(hours=i), "customer_id": c, "fraud": f, "score": s}
            for i, (c, f, s) in enumerate(rows)
        ]
    )


def test_card_precision_removes_cards_detected_on_earlier_days():
    day1 = _day("2018-08-08", [(1, 1, 0.9), (1, 0, 0.1), (2, 0, 0.8), (3, 1, 0.2)])
    day2 = _day("2018-08-09", [(1, 1, 0.95), (3, 1, 0.9), (4, 0, 0.1)])
    frame = pd.concat([day1, day2], ignore_index=True)
    mean, per_day, remaining = card_precision_top_k(frame, frame["score"].to_numpy(), k=2)
    # Day 1: cards ranked 1 (0.9, fraud), 2 (0.8, genuine) -> 1/2; card 1 is now detected.
    # Day 2: card 1 is dropped; top 2 are 3 (fraud) and 4 -> 1/2.
    assert per_day == [0.5, 0.5]
    assert remaining == [2, 1]
    assert mean == 0.5


def test_card_precision_divides_by_k_even_with_few_cards():
    frame = _day("2018-08-08", [(1, 1, 0.9), (2, 0, 0.1)])
    assert card_precision_top_k(frame, frame["score"].to_numpy(), k=100)[0] == 0.01


def test_f1_threshold_separates_as_measured():
    y = np.array([1, 1, 1, 0, 0, 0, 0, 1])
    s = np.array([0.9, 0.8, 0.7, 0.6, 0.3, 0.2, 0.1, 0.05])
    t = f1_threshold(y, s)
    assert 0.6 < t < 0.7  # alerts on the three top scores: F1 = 6/7, the best here
