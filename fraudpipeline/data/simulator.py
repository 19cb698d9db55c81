"""A seedable transaction simulator following the Fraud Detection Handbook's published recipe.

Customers and terminals sit on a 100 x 100 grid; each customer pays at terminals within a
radius, a Poisson number of times a day, around noon, with normally distributed amounts. Three
fraud scenarios are injected: large amounts, compromised terminals (every payment there for 28
days) and compromised cards (a third of their payments for 14 days, at five times the amount).
Written from the handbook's description (Chapter 3), vectorised with numpy; it does not
reproduce the handbook's exact rows, only the same kind of data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400


@dataclass(frozen=True)
class SimulatorConfig:
    n_customers: int = 5_000
    n_terminals: int = 10_000
    start: str = "2018-04-01"
    days: int = 183
    radius: float = 5.0  # about 100 terminals in reach with the defaults
    seed: int = 0
    grid: float = 100.0
    large_amount: float = 220.0  # scenario 1: above this is fraud
    compromised_terminals_per_day: int = 2  # scenario 2
    terminal_fraud_days: int = 28
    compromised_customers_per_day: int = 3  # scenario 3
    customer_fraud_days: int = 14
    customer_fraud_share: float = 1 / 3
    customer_fraud_factor: float = 5.0


def _terminals_in_reach(cust_xy: np.ndarray, term_xy: np.ndarray, radius: float) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists (offsets, terminal ids) of the terminals within `radius` of each customer."""
    ids: list[np.ndarray] = []
    counts = np.zeros(len(cust_xy), dtype=np.int64)
    # Chunked to bound memory (5,000 x 10,000 distances at once would be 400 MB).
    for lo in range(0, len(cust_xy), 500):
        block = cust_xy[lo : lo + 500]
        d2 = ((block[:, None, :] - term_xy[None, :, :]) ** 2).sum(axis=2)
        near = d2 < radius * radius
        counts[lo : lo + len(block)] = near.sum(axis=1)
        ids.append(np.nonzero(near)[1])
    offsets = np.r_[0, np.cumsum(counts)]
    return offsets, np.concatenate(ids) if ids else np.zeros(0, np.int64)


def simulate(config: SimulatorConfig | None = None) -> pd.DataFrame:
    """A canonical transaction table (see fraudpipeline.data) with `fraud` and `fraud_scenario`."""
    c = config or SimulatorConfig()
    rng = np.random.default_rng(c.seed)

    cust_xy = rng.uniform(0, c.grid, size=(c.n_customers, 2))
    mean_amount = rng.uniform(5, 100, size=c.n_customers)
    std_amount = mean_amount / 2
    tx_per_day = rng.uniform(0, 4, size=c.n_customers)
    term_xy = rng.uniform(0, c.grid, size=(c.n_terminals, 2))
    offsets, reach = _terminals_in_reach(cust_xy, term_xy, c.radius)
    n_reach = np.diff(offsets)

    # Transactions: a Poisson count per (customer, day), customers without terminals skipped.
    counts = rng.poisson(tx_per_day[:, None], size=(c.n_customers, c.days))
    counts[n_reach == 0, :] = 0
    cust = np.repeat(np.repeat(np.arange(c.n_customers), c.days), counts.ravel())
    day = np.repeat(np.tile(np.arange(c.days), c.n_customers), counts.ravel())
    secs = np.rint(rng.normal(SECONDS_PER_DAY / 2, 20_000, size=len(cust))).astype(np.int64)
    keep = (secs >= 0) & (secs < SECONDS_PER_DAY)  # times outside the day are dropped
    cust, day, secs = cust[keep], day[keep], secs[keep]

    amount = rng.normal(mean_amount[cust], std_amount[cust])
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean_amount[cust[negative]])
    amount = np.round(amount, 2)
    terminal = reach[offsets[cust] + (rng.random(len(cust)) * n_reach[cust]).astype(np.int64)]

    tx_time = day * SECONDS_PER_DAY + secs
    order = np.lexsort((cust, tx_time))
    cust, day, terminal, amount, tx_time = cust[order], day[order], terminal[order], amount[order], tx_time[order]
    n = len(cust)
    fraud = np.zeros(n, dtype=np.int8)
    scenario = np.zeros(n, dtype=np.int8)

    # Scenario 1: large amounts.
    big = amount > c.large_amount
    fraud[big], scenario[big] = 1, 1

    # Scenario 2: terminals compromised for the next `terminal_fraud_days` days.
    compromised_t = np.zeros((c.n_terminals, c.days + c.terminal_fraud_days), dtype=bool)
    for d in range(c.days):
        picked = rng.choice(c.n_terminals, size=c.compromised_terminals_per_day, replace=False)
        compromised_t[picked, d : d + c.terminal_fraud_days] = True
    hit = compromised_t[terminal, day]
    fraud[hit], scenario[hit] = 1, 2

    # Scenario 3: cards compromised for `customer_fraud_days` days; a share of their payments
    # in that period is fraud at `customer_fraud_factor` times the amount.
    by_cust = np.lexsort((tx_time, cust))
    cust_sorted = cust[by_cust]
    day_sorted = day[by_cust]
    for d in range(c.days):
        for k in rng.choice(c.n_customers, size=c.compromised_customers_per_day, replace=False):
            lo, hi = np.searchsorted(cust_sorted, [k, k + 1])
            window = by_cust[lo:hi][(day_sorted[lo:hi] >= d) & (day_sorted[lo:hi] < d + c.customer_fraud_days)]
            chosen = rng.choice(window, size=int(len(window) * c.customer_fraud_share), replace=False)
            amount[chosen] = np.round(amount[chosen] * c.customer_fraud_factor, 2)
            fraud[chosen], scenario[chosen] = 1, 3

    start = np.datetime64(pd.Timestamp(c.start).to_datetime64(), "s")
    return pd.DataFrame(
        {
            "transaction_id": np.arange(n, dtype=np.int64),
            "timestamp": (start + tx_time.astype("timedelta64[s]")).astype("datetime64[ns]"),
            "customer_id": cust.astype(np.int64),
            "terminal_id": terminal.astype(np.int64),
            "amount": amount,
            "fraud": fraud,
            "fraud_scenario": scenario,
        }
    )
