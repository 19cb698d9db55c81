"""Constants shared by the offline and online feature implementations (no heavy imports)."""

from __future__ import annotations

# Window lengths in days; the handbook uses the same three for customers and terminals.
CUSTOMER_WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
TERMINAL_WINDOWS_DAYS: tuple[int, ...] = (1, 7, 30)
# Labels become known this many days after the transaction (the handbook's delay).
LABEL_DELAY_DAYS: int = 7
# Night is hours 0..NIGHT_LAST_HOUR inclusive: the handbook's code says `hour <= 6`.
NIGHT_LAST_HOUR: int = 6

# A list (the contract says "list") so it compares equal to the model metadata read back from JSON.
FEATURE_NAMES: list[str] = [
    "tx_amount",
    "tx_during_weekend",
    "tx_during_night",
    *(
        name
        for w in CUSTOMER_WINDOWS_DAYS
        for name in (f"customer_nb_tx_{w}day", f"customer_avg_amount_{w}day")
    ),
    *(
        name
        for w in TERMINAL_WINDOWS_DAYS
        for name in (f"terminal_nb_tx_{w}day", f"terminal_risk_{w}day")
    ),
]
