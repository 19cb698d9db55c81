"""Which features drove an alert: the model's own per-feature contributions (XGBoost's SHAP values).

An alert carries the 15 feature values the model scored; the exported booster gives each one's
contribution to the log-odds of fraud for that row, so the page and `fraudpipe alerts` can show
the few that pushed the score over the threshold, not only the values.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fraudpipeline.features import FEATURE_NAMES


class Explainer:
    def __init__(self, export_dir: Path):
        from fraudpipeline.model import load_export

        self.booster, self.meta = load_export(export_dir)

    def drivers(self, features: dict[str, Any], top: int = 4) -> list[dict[str, Any]]:
        """The `top` features with the largest positive contributions, largest first."""
        import numpy as np
        import xgboost

        try:
            row = np.array([[float(features[n]) for n in FEATURE_NAMES]], dtype=np.float32)
        except (KeyError, TypeError, ValueError):
            return []
        matrix = xgboost.DMatrix(row, feature_names=self.booster.feature_names)
        contribs = self.booster.predict(matrix, pred_contribs=True)[0][: len(FEATURE_NAMES)]
        order = sorted(range(len(FEATURE_NAMES)), key=lambda i: -contribs[i])
        return [
            {"feature": FEATURE_NAMES[i], "value": float(row[0][i]), "contribution": round(float(contribs[i]), 3)}
            for i in order[:top]
            if contribs[i] > 0
        ]


def load(export_dir: Path | str | None) -> Explainer | None:
    """An Explainer for the exported model, or None when there is none to read."""
    if not export_dir:
        return None
    try:
        return Explainer(Path(export_dir))
    except Exception:  # noqa: BLE001 - explanations are a help, never a reason to fail
        return None
