"""The Fraud Detection Handbook's simulated data set, regenerated exactly.

Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine Learning for Credit Card Fraud
Detection - Practical Handbook", Université Libre de Bruxelles, 2022, Chapter 3 "Transaction
data simulator" (https://fraud-detection-handbook.github.io/fraud-detection-handbook/). Its
published data (`simulated-data-raw`, one file a day, 2018-04-01..2018-09-30) comes from a
fully seeded algorithm; this module is our own implementation of that algorithm and produces
the same 1,754,155 rows (14,681 frauds), value for value and in the same order, in about 10 s on
the project's 2-core machine (measured: 8.6 s to generate, 10.6 s for `fraudpipe data handbook`). What makes it exact:

- customer profiles: NumPy's legacy generator seeded 0; per customer, in order, x and y
  uniform(0, 100), mean amount uniform(5, 100), std = mean / 2, transactions a day uniform(0, 4);
- terminal profiles: seeded 1; x and y uniform(0, 100);
- a customer's terminals: those at Euclidean distance < radius (5), in terminal order;
- a customer's transactions: Python's `random` and NumPy's legacy generator seeded with the
  customer id; each day a Poisson count; per transaction the second of day
  int(normal(43200, 20000)), and only when it falls inside (0, 86400) the amount
  normal(mean, std) (re-drawn uniform(0, 2 * mean) when negative, rounded to cents with NumPy's
  rounding) and the terminal `random.choice` among the customer's;
- the table, customers in order, is sorted by time with NumPy's (unstable) introsort and
  numbered from 0: the tie order of same-second transactions decides TRANSACTION_ID;
- frauds, for each day d in [0, last day): scenario 1 amount > 220; scenario 2 two terminals
  (pandas `sample(n=2, random_state=d)`), all their transactions in [d, d + 28); then scenario 3
  three customers (`sample(n=3, random_state=d)`), of their transactions in [d, d + 14) a third
  chosen with `random.seed(d)` and `random.sample`, amount times 5;
- the published daily files were each sorted again by TX_TIME_SECONDS with the same unstable
  sort, which is the row order written here.

NumPy dispatches the argsort of 64-bit integers to SIMD sorts on CPUs with AVX-512, whose tie
order differs from the introsort the published files came from; the sorts here run on
datetime64 arrays, which NumPy sorts with its portable introsort everywhere.

`ensure_handbook()` returns the cached parquet (generated on first use, under
`$FRAUDPIPE_CACHE/datasets`, default `~/.cache/fraudpipeline/datasets`), safe when several
processes ask at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import random
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400
# The published files' columns, in their order.
COLUMNS = [
    "TRANSACTION_ID",
    "TX_DATETIME",
    "CUSTOMER_ID",
    "TERMINAL_ID",
    "TX_AMOUNT",
    "TX_TIME_SECONDS",
    "TX_TIME_DAYS",
    "TX_FRAUD",
    "TX_FRAUD_SCENARIO",
]
CACHE_ENV_VAR = "FRAUDPIPE_CACHE"
# Bump when the generated content could change (a fix), so that old caches are not reused.
FORMAT_VERSION = 1
CITATION = (
    'Le Borgne, Siblini, Lebichot, Bontempi, "Reproducible Machine Learning for Credit Card Fraud '
    'Detection - Practical Handbook", Chapter 3 "Transaction data simulator" '
    "(https://fraud-detection-handbook.github.io/fraud-detection-handbook/)"
)

Progress = Callable[[int, int], None]  # (customers done, customers in all)


@dataclass(frozen=True)
class HandbookConfig:
    """The handbook's parameters; the defaults give its published data set."""

    n_customers: int = 5_000
    n_terminals: int = 10_000
    days: int = 183
    start: str = "2018-04-01"
    radius: float = 5.0
    customer_seed: int = 0
    terminal_seed: int = 1

    def is_default(self) -> bool:
        return self == HandbookConfig()


def customer_profiles(config: HandbookConfig) -> np.ndarray:
    """(n_customers, 5): x, y, mean amount, std amount, mean transactions a day."""
    rs = np.random.RandomState(config.customer_seed)
    out = np.empty((config.n_customers, 5))
    for i in range(config.n_customers):  # draw order: x, y, mean amount, transactions a day
        x = rs.uniform(0, 100)
        y = rs.uniform(0, 100)
        mean = rs.uniform(5, 100)
        per_day = rs.uniform(0, 4)
        out[i] = (x, y, mean, mean / 2, per_day)
    return out


def terminal_profiles(config: HandbookConfig) -> np.ndarray:
    """(n_terminals, 2): x, y."""
    rs = np.random.RandomState(config.terminal_seed)
    out = np.empty((config.n_terminals, 2))
    for i in range(config.n_terminals):
        out[i, 0] = rs.uniform(0, 100)
        out[i, 1] = rs.uniform(0, 100)
    return out


def terminals_within(customer_xy: np.ndarray, terminal_xy: np.ndarray, radius: float) -> list[int]:
    """Terminal ids at distance < radius, in id order (same float operations as the handbook)."""
    dist = np.sqrt(np.sum(np.square(customer_xy - terminal_xy), axis=1))
    return np.flatnonzero(dist < radius).tolist()


def customer_transactions(
    customer_id: int, profile: np.ndarray, terminals: list[int], days: int
) -> tuple[list[int], list[int], list[float]]:
    """One customer's (seconds since start, terminal id, unrounded amount), in draw order."""
    if not terminals:
        return [], [], []  # the handbook draws but keeps nothing; the next customer reseeds
    rs = np.random.RandomState(customer_id)
    pick = random.Random(customer_id).choice
    poisson, normal, uniform = rs.poisson, rs.normal, rs.uniform
    mean, std, per_day = float(profile[2]), float(profile[3]), float(profile[4])
    seconds: list[int] = []
    terminal_ids: list[int] = []
    amounts: list[float] = []
    half_day = SECONDS_PER_DAY / 2
    for day in range(days):
        n = poisson(per_day)
        base = day * SECONDS_PER_DAY
        for _ in range(n):
            t = int(normal(half_day, 20_000))
            if 0 < t < SECONDS_PER_DAY:  # the amount and terminal are drawn only for a kept time
                amount = normal(mean, std)
                if amount < 0:
                    amount = uniform(0, mean * 2)
                seconds.append(base + t)
                terminal_ids.append(pick(terminals))
                amounts.append(amount)
    return seconds, terminal_ids, amounts


def _introsort_order(values: np.ndarray) -> np.ndarray:
    """pandas' default sort order (NumPy quicksort), on every CPU: see the module docstring."""
    return np.argsort(values.astype(np.int64).view("datetime64[s]"), kind="quicksort")


def generate(config: HandbookConfig | None = None, progress: Progress | None = None) -> pd.DataFrame:
    """The data set as the published daily files hold it, concatenated in day order."""
    c = config or HandbookConfig()
    customers = customer_profiles(c)
    terminal_xy = terminal_profiles(c)

    seconds: list[int] = []
    customer_ids: list[int] = []
    terminal_ids: list[int] = []
    amounts: list[float] = []
    for cid in range(c.n_customers):
        s, t, a = customer_transactions(
            cid, customers[cid], terminals_within(customers[cid, :2], terminal_xy, c.radius), c.days
        )
        seconds += s
        terminal_ids += t
        amounts += a
        customer_ids += [cid] * len(s)
        if progress is not None and (cid % 50 == 49 or cid == c.n_customers - 1):
            progress(cid + 1, c.n_customers)

    tx_seconds = np.asarray(seconds, dtype=np.int64)
    order = _introsort_order(tx_seconds)  # TRANSACTION_ID order
    tx_seconds = tx_seconds[order]
    tx_days = tx_seconds // SECONDS_PER_DAY
    customer = np.asarray(customer_ids, dtype=np.int64)[order]
    terminal = np.asarray(terminal_ids, dtype=np.int64)[order]
    amount = np.round(np.asarray(amounts, dtype=np.float64), 2)[order]
    fraud = np.zeros(len(order), dtype=np.int64)
    scenario = np.zeros(len(order), dtype=np.int64)

    _add_frauds(c, tx_days, customer, terminal, amount, fraud, scenario)

    # The daily files: each day's rows sorted by TX_TIME_SECONDS with the same unstable sort.
    bounds = np.searchsorted(tx_days, np.arange(int(tx_days.max(initial=-1)) + 2))
    rows = np.arange(len(order))
    daily = np.concatenate(
        [rows[lo:hi][_introsort_order(tx_seconds[lo:hi])] for lo, hi in zip(bounds[:-1], bounds[1:])] or [rows[:0]]
    )
    start = np.datetime64(pd.Timestamp(c.start).to_datetime64(), "ns")
    return pd.DataFrame(
        {
            "TRANSACTION_ID": daily.astype(np.int64),
            "TX_DATETIME": start + tx_seconds[daily].astype("timedelta64[s]").astype("timedelta64[ns]"),
            "CUSTOMER_ID": customer[daily],
            "TERMINAL_ID": terminal[daily],
            "TX_AMOUNT": amount[daily],
            "TX_TIME_SECONDS": tx_seconds[daily],
            "TX_TIME_DAYS": tx_days[daily],
            "TX_FRAUD": fraud[daily],
            "TX_FRAUD_SCENARIO": scenario[daily],
        },
        columns=COLUMNS,
    )


def _add_frauds(
    c: HandbookConfig,
    tx_days: np.ndarray,
    customer: np.ndarray,
    terminal: np.ndarray,
    amount: np.ndarray,
    fraud: np.ndarray,
    scenario: np.ndarray,
) -> None:
    """The three scenarios, in place, on the table in TRANSACTION_ID order (days ascending)."""
    large = amount > 220
    fraud[large] = 1
    scenario[large] = 1
    last_day = int(tx_days.max(initial=0))
    first_row = np.searchsorted(tx_days, np.arange(last_day + 30))  # first row of each day
    terminal_ids = pd.Series(np.arange(c.n_terminals, dtype=np.int64))
    customer_ids = pd.Series(np.arange(c.n_customers, dtype=np.int64))
    for day in range(last_day):  # the handbook's range(TX_TIME_DAYS.max())
        compromised = terminal_ids.sample(n=2, random_state=day).to_numpy()
        lo, hi = first_row[day], first_row[day + 28]
        hit = lo + np.flatnonzero(np.isin(terminal[lo:hi], compromised))
        fraud[hit] = 1
        scenario[hit] = 2
    for day in range(last_day):
        compromised = customer_ids.sample(n=3, random_state=day).to_numpy()
        lo, hi = first_row[day], first_row[day + 14]
        candidates = (lo + np.flatnonzero(np.isin(customer[lo:hi], compromised))).tolist()
        chosen = random.Random(day).sample(candidates, k=int(len(candidates) / 3))
        amount[chosen] = amount[chosen] * 5
        fraud[chosen] = 1
        scenario[chosen] = 3


# --- the cached file -------------------------------------------------------------------------


def cache_root() -> Path:
    return Path(os.environ.get(CACHE_ENV_VAR) or Path.home() / ".cache" / "fraudpipeline").expanduser()


def cached_path(config: HandbookConfig | None = None) -> Path:
    c = config or HandbookConfig()
    name = f"fraud-handbook-v{FORMAT_VERSION}.parquet"
    if not c.is_default():
        name = (
            f"fraud-handbook-v{FORMAT_VERSION}-c{c.n_customers}-t{c.n_terminals}-d{c.days}-r{c.radius:g}"
            f"-s{c.customer_seed}.{c.terminal_seed}-{c.start}.parquet"
        )
    return cache_root() / "datasets" / name


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path.with_name(path.name + ".lock"), "a+") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh.fileno(), fcntl.LOCK_UN)


def write_parquet(df: pd.DataFrame, path: Path) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        df.to_parquet(tmp, index=False, compression="zstd")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes it private; a cache file is like any other
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def transactions(config: HandbookConfig | None = None) -> pd.DataFrame:
    """The generated data set in the canonical form of fraudpipeline.data (for small test configs)."""
    from fraudpipeline.data.loading import to_canonical

    df = to_canonical(generate(config), "the generated handbook data set")
    return df.sort_values("timestamp", kind="stable").reset_index(drop=True)


@contextlib.contextmanager
def rich_progress(description: str) -> Iterator[Progress]:
    """A progress callback drawing a rich bar on stderr (stdout may carry JSON)."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as Bar

    with Bar(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    ) as bar:
        task = bar.add_task(description, total=None)

        def update(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def ensure_handbook(
    config: HandbookConfig | None = None, *, show_progress: bool = True, regenerate: bool = False
) -> Path:
    """The cached parquet of the data set, generated (once, under a file lock) when absent."""
    path = cached_path(config)
    if path.exists() and not regenerate:
        return path
    with _locked(path):
        if path.exists() and not regenerate:  # another process generated it while we waited
            return path
        if show_progress:
            with rich_progress("Generating the Fraud Detection Handbook data set") as update:
                df = generate(config, update)
        else:
            df = generate(config)
        write_parquet(df, path)
    return path
