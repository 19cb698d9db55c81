"""The fraud features of the Fraud Detection Handbook, defined once.

`FEATURE_NAMES` is the model contract: the 15 inputs in their fixed order. The offline
(vectorised) and online (incremental) implementations live in submodules so importing this
package stays light (no pandas).
"""

from fraudpipeline.features.definitions import (
    CUSTOMER_WINDOWS_DAYS,
    FEATURE_NAMES,
    LABEL_DELAY_DAYS,
    NIGHT_LAST_HOUR,
    TERMINAL_WINDOWS_DAYS,
    US_PER_DAY,
    US_PER_HOUR,
    time_flags,
)

__all__ = [
    "CUSTOMER_WINDOWS_DAYS",
    "FEATURE_NAMES",
    "LABEL_DELAY_DAYS",
    "NIGHT_LAST_HOUR",
    "TERMINAL_WINDOWS_DAYS",
    "US_PER_DAY",
    "US_PER_HOUR",
    "time_flags",
]
