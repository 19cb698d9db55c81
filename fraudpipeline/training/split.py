"""The handbook's time split: a training window, a label delay, then a test window.

The test set leaves out cards already known to be compromised: those with a fraud in the
training window, or with a fraud on a day whose label is known by the test day (the
handbook's `get_train_test_set`, Chapter 3).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

import pandas as pd


@dataclass(frozen=True)
class SplitDates:
    train_start: date
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7

    @property
    def train_end(self) -> date:  # exclusive
        return self.train_start + timedelta(days=self.train_days)

    @property
    def test_start(self) -> date:
        return self.train_end + timedelta(days=self.delay_days)

    @property
    def test_end(self) -> date:  # exclusive
        return self.test_start + timedelta(days=self.test_days)

    def shifted(self, days: int) -> SplitDates:
        return SplitDates(self.train_start + timedelta(days=days), self.train_days, self.delay_days, self.test_days)

    def as_metadata(self) -> dict[str, object]:
        return {
            "start": self.train_start.isoformat(),
            "end": (self.train_end - timedelta(days=1)).isoformat(),
            "delay_days": self.delay_days,
            "test_start": self.test_start.isoformat(),
            "test_end": (self.test_end - timedelta(days=1)).isoformat(),
        }


def split(frame: pd.DataFrame, dates: SplitDates) -> tuple[pd.Index, pd.Index]:
    """Row labels of the training set and of the filtered test set."""
    day = pd.to_datetime(frame["timestamp"]).dt.normalize()
    ts = lambda d: pd.Timestamp(d)  # noqa: E731 - local shorthand
    train = (day >= ts(dates.train_start)) & (day < ts(dates.train_end))
    known = set(frame.loc[train & (frame["fraud"] == 1), "customer_id"])
    test_parts = []
    for k in range(dates.test_days):
        # Frauds of the last training day and of the delay days become known one day at a
        # time; the handbook's test day k sees those up to train_end - 1 + k.
        feedback_day = ts(dates.train_end) + pd.Timedelta(days=k - 1)
        known |= set(frame.loc[(day == feedback_day) & (frame["fraud"] == 1), "customer_id"])
        test_day = ts(dates.test_start) + pd.Timedelta(days=k)
        on_day = (day == test_day) & ~frame["customer_id"].isin(known)
        test_parts.append(frame.index[on_day])
    test_index = test_parts[0].append(test_parts[1:]) if test_parts else pd.Index([])
    return frame.index[train], test_index
