"""Fixtures for the feature tests: a 20,000+ transaction sample and the handbook's pandas procedure."""

from __future__ import annotations

import pandas as pd
import pytest

from fraudpipeline.data import default_data_paths, load_transactions


@pytest.fixture(scope="session")
def sample_transactions() -> pd.DataFrame:
    """About 45,000 handbook transactions over the whole 6 months.

    A sample of customers plus a sample of terminals, so that both keys have full 30-day
    histories and windows are exercised at every length. `$FRAUDPIPE_DATA` when set (it must
    then be readable), else the regenerated handbook data set (fraudpipeline.data.handbook).
    """
    df = load_transactions(default_data_paths())
    keep = (df["customer_id"] % 40 == 0) | (df["terminal_id"] % 100 == 0)
    df = df[keep].reset_index(drop=True)
    assert len(df) >= 20_000
    return df
