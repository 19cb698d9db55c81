"""Fixtures for the feature tests: a 20,000+ transaction sample and the handbook's pandas procedure."""

from __future__ import annotations

import pandas as pd
import pytest
from feature_helpers import SHARED_DATASETS, handbook_expected

from fraudpipeline.data import SimulatorConfig, default_data_paths, load_transactions, simulate
from fraudpipeline.data.loading import ENV_VAR


@pytest.fixture(scope="session")
def sample_transactions() -> pd.DataFrame:
    """About 45,000 handbook transactions over the whole 4.5 months (or simulator ones).

    A sample of customers plus a sample of terminals, so that both keys have full 30-day
    histories and windows are exercised at every length. When the data set is expected (see
    `handbook_expected`) but cannot be read, this fails: a quiet fall-back to the simulator
    would let a broken data path pass.
    """
    paths = default_data_paths()
    if handbook_expected():
        missing = [str(p) for p in paths if not p.exists()]
        if missing:
            pytest.fail(
                f"the handbook data set is expected ({ENV_VAR} is set or {SHARED_DATASETS} exists) "
                f"but {', '.join(missing)} is missing: fix {ENV_VAR} or the shared folder"
            )
        df = load_transactions(paths)
        keep = (df["customer_id"] % 40 == 0) | (df["terminal_id"] % 100 == 0)
        df = df[keep].reset_index(drop=True)
        df.attrs["source"] = "handbook"
    else:
        df = simulate(SimulatorConfig(n_customers=600, n_terminals=1_200, days=90, seed=11))
        df.attrs["source"] = "simulator"
    assert len(df) >= 20_000
    return df
