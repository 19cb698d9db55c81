"""Constants shared by the offline and online feature implementations (no heavy imports)."""

from __future__ import annotations

from typing import Any

# Times are integer microseconds since the epoch, UTC.
US_PER_HOUR: int = 3_600 * 1_000_000
US_PER_DAY: int = 24 * US_PER_HOUR
# 1970-01-01 was a Thursday: weekday 3 counting Monday as 0.
EPOCH_WEEKDAY: int = 3

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
    *(name for w in CUSTOMER_WINDOWS_DAYS for name in (f"customer_nb_tx_{w}day", f"customer_avg_amount_{w}day")),
    *(name for w in TERMINAL_WINDOWS_DAYS for name in (f"terminal_nb_tx_{w}day", f"terminal_risk_{w}day")),
]


def time_flags(time_us: Any) -> tuple[Any, Any]:
    """(tx_during_weekend, tx_during_night) as 0.0/1.0 from UTC epoch microseconds.

    One definition for both implementations: `time_us` is an int (online, returns two floats)
    or an int64 numpy array (offline, returns two float64 arrays); the arithmetic is the same.
    """
    days, in_day = divmod(time_us, US_PER_DAY)
    weekend = ((days + EPOCH_WEEKDAY) % 7 >= 5) * 1.0
    night = (in_day // US_PER_HOUR <= NIGHT_LAST_HOUR) * 1.0
    return weekend, night
