"""Transaction tables for training, tests and benchmarks.

`load_transactions` reads the handbook parquet files (or any parquet with the canonical
columns); `simulate` generates the same kind of data from the handbook's published recipe when
the data set is absent; `resolve_transactions` picks one of the two for a command line.

The canonical table has the wire names of docs/transactions.md plus the label:
`transaction_id, timestamp (naive UTC), customer_id, terminal_id, amount, fraud`, and
`fraud_scenario` when known, sorted by `timestamp` (ties keep file order).
"""

from fraudpipeline.data.loading import (
    CANONICAL_COLUMNS,
    DataSetError,
    default_data_paths,
    load_transactions,
    resolve_transactions,
)
from fraudpipeline.data.simulator import SimulatorConfig, simulate

__all__ = [
    "CANONICAL_COLUMNS",
    "DataSetError",
    "SimulatorConfig",
    "default_data_paths",
    "load_transactions",
    "resolve_transactions",
    "simulate",
]
