"""Transaction tables for training, tests and benchmarks.

The default data is the Fraud Detection Handbook's simulated data set (Le Borgne, Siblini,
Lebichot, Bontempi, "Reproducible Machine Learning for Credit Card Fraud Detection - Practical
Handbook", Chapter 3), regenerated exactly by `fraudpipeline.data.handbook` and cached under
`$FRAUDPIPE_CACHE/datasets` on first use (`fraudpipe data handbook` writes it on demand).
`load_transactions` reads it or any parquet with the canonical columns; `resolve_transactions`
picks `--data`, else `$FRAUDPIPE_DATA`, else the regenerated set for a command line.

The canonical table has the wire names of docs/transactions.md plus the label:
`transaction_id, timestamp (naive UTC), customer_id, terminal_id, amount, fraud`, and
`fraud_scenario` when known, sorted by `timestamp` (ties keep file order).
"""

from fraudpipeline.data.handbook import HandbookConfig, ensure_handbook, generate
from fraudpipeline.data.loading import (
    CANONICAL_COLUMNS,
    DataSetError,
    Source,
    default_data_paths,
    load_transactions,
    resolve_transactions,
)

__all__ = [
    "CANONICAL_COLUMNS",
    "DataSetError",
    "HandbookConfig",
    "Source",
    "default_data_paths",
    "ensure_handbook",
    "generate",
    "load_transactions",
    "resolve_transactions",
]
