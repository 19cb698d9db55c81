"""`fraudpipe train` end to end: load, features, validation search, fit, test, save.

The split is the handbook's (Chapter 3): a training window, a label delay, a test window with
already-known compromised cards removed. Hyper-parameters and the decision threshold come
from validation folds that end with the training window (see model.py); the test window is
used once, to report the figures.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from fraudpipeline.features import FEATURE_NAMES, LABEL_DELAY_DAYS, TERMINAL_WINDOWS_DAYS
from fraudpipeline.training import model as models
from fraudpipeline.training.split import SplitDates, split

# Oldest history any feature of a row looks at (terminal windows end delay + 30 days back).
HISTORY_DAYS = LABEL_DELAY_DAYS + max(TERMINAL_WINDOWS_DAYS)


class Reporter(Protocol):
    def stage(self, name: str, total: int | None = None) -> None: ...
    def advance(self, n: int = 1) -> None: ...
    def note(self, message: str) -> None: ...


class _Silent:
    def stage(self, name: str, total: int | None = None) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def note(self, message: str) -> None:
        pass


@dataclass
class TrainConfig:
    train_start: date
    train_days: int = 7
    delay_days: int = 7
    test_days: int = 7
    data: Sequence[Path] | None = None  # None: $FRAUDPIPE_DATA, the shared file, else the simulator
    validation_folds: int = 4  # 0: no search, fixed parameters
    threads: int = 2
    seed: int = 0
    save: bool = True
    model_name: str = "fraud-xgb"
    export_dir: Path | None = None
    simulator_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("train_days", "test_days"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.delay_days < 0:
            raise ValueError(f"--delay-days must be >= 0 (got {self.delay_days})")
        if self.validation_folds < 0:
            raise ValueError(f"--validation-folds must be >= 0 (got {self.validation_folds})")
        if self.threads < 1:
            raise ValueError(f"--threads must be at least 1 (got {self.threads})")

    @property
    def dates(self) -> SplitDates:
        return SplitDates(self.train_start, self.train_days, self.delay_days, self.test_days)

    def fold_dates(self) -> list[SplitDates]:
        """Validation folds: each validation window ends within the training window."""
        d = self.dates
        out = []
        for k in range(self.validation_folds):
            valid_start = d.train_end - timedelta(days=self.test_days * (k + 1))
            out.append(SplitDates(valid_start - timedelta(days=self.delay_days + self.train_days),
                                  self.train_days, self.delay_days, self.test_days))
        return out


@dataclass
class TrainResult:
    summary: dict[str, Any]
    booster: Any = field(repr=False)
    metadata: dict[str, Any] = field(repr=False)


class TrainingError(RuntimeError):
    """The data cannot support the requested split."""


def _day(ts: pd.Timestamp) -> date:
    return ts.normalize().date()


def run(config: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    from fraudpipeline.data import resolve_transactions
    from fraudpipeline.features.offline import compute_features

    rep = reporter or _Silent()
    timings: dict[str, float] = {}
    dates = config.dates
    folds = config.fold_dates()
    earliest_train = min([dates.train_start, *(f.train_start for f in folds)])
    load_start = earliest_train - timedelta(days=HISTORY_DAYS + 1)

    t0 = time.perf_counter()
    rep.stage("Loading transactions")
    table, source = resolve_transactions(
        list(config.data) if config.data else None,
        start=pd.Timestamp(load_start),
        end=pd.Timestamp(dates.test_end),
        seed=config.simulator_seed,
    )
    if source.kind == "simulator":
        rep.note(f"using the simulator: {source.description}")
    if table.empty:
        raise TrainingError(
            f"no transactions between {load_start} and {dates.test_end} in {source.description}: "
            f"choose --train-start so that training, delay and test windows fall within the data"
        )
    first_day, last_day = _day(table["timestamp"].iloc[0]), _day(table["timestamp"].iloc[-1])
    if last_day < dates.test_end - timedelta(days=1) or first_day > dates.train_start:
        raise TrainingError(
            f"the data ({source.description}) spans {first_day}..{last_day}; the split needs "
            f"{dates.train_start}..{dates.test_end - timedelta(days=1)}: choose --train-start so that "
            f"training, delay and test windows fit"
        )
    if first_day > dates.train_start - timedelta(days=HISTORY_DAYS):
        rep.note(f"only {(dates.train_start - first_day).days} days of history before training: "
                 f"the first rows' {HISTORY_DAYS}-day features are truncated")
    usable = [f for f in folds if f.train_start - timedelta(days=HISTORY_DAYS) >= first_day]
    if len(usable) < len(folds):
        rep.note(f"{len(folds) - len(usable)} validation fold(s) dropped: not enough history before {first_day}")
    timings["load_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rep.stage("Computing features", total=1)
    features = compute_features(table)
    rep.advance()
    timings["features_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    fold_splits = [split(table, f) for f in usable]
    search_result = None
    if fold_splits:
        n_fits = len(models.GRID_LEARNING_RATE) * len(models.GRID_MAX_DEPTH) * len(fold_splits)
        rep.stage(f"Validation search ({len(fold_splits)} fold{'s' if len(fold_splits) > 1 else ''})", total=n_fits)
        search_result = models.search(table, features, fold_splits, threads=config.threads, seed=config.seed,
                                      on_fit=rep.advance)
        best = search_result.best
        threshold = models.f1_threshold(search_result.labels, search_result.scores)
    else:
        best = models.Candidate(**models.DEFAULT_CHOICE)
        threshold = 0.5
        rep.note("no validation fold: fixed parameters and threshold 0.5")
    timings["search_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    train_idx, test_idx = split(table, dates)
    if len(test_idx) == 0 or table.loc[test_idx, "fraud"].nunique() < 2:
        raise TrainingError(f"the test window {dates.test_start}..{dates.test_end - timedelta(days=1)} "
                            f"needs both genuine and fraudulent transactions")
    if table.loc[train_idx, "fraud"].nunique() < 2:
        raise TrainingError("the training window needs both genuine and fraudulent transactions")
    rep.stage("Training the model", total=1)
    params = models.xgb_params(best, threads=config.threads, seed=config.seed)
    booster = models.fit(features.loc[train_idx], table.loc[train_idx, "fraud"].to_numpy(), params, best.n_trees)
    rep.advance()
    timings["fit_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    rep.stage("Evaluating on the test window", total=1)
    test = table.loc[test_idx]
    scores = models.predict(booster, features.loc[test_idx])
    metrics = models.evaluate(test, scores)
    alerts = scores >= threshold
    y = test["fraud"].to_numpy().astype(bool)
    metrics.update(
        {
            "precision_at_threshold": float((alerts & y).sum() / max(alerts.sum(), 1)),
            "recall_at_threshold": float((alerts & y).sum() / max(y.sum(), 1)),
            "n_train": int(len(train_idx)),
            "n_train_frauds": int(table.loc[train_idx, "fraud"].sum()),
            "n_test": int(len(test_idx)),
            "n_test_frauds": int(y.sum()),
        }
    )
    if search_result:
        chosen = next(r for r in search_result.table
                      if (r["learning_rate"], r["max_depth"], r["n_trees"]) == (best.learning_rate, best.max_depth, best.n_trees))
        metrics.update({f"validation_{m}": chosen[m] for m in ("auc", "ap", "cp100")})
    rep.advance()
    timings["evaluate_s"] = time.perf_counter() - t0

    metadata = {
        "features": list(FEATURE_NAMES),
        "threshold": float(threshold),
        "train_window": dates.as_metadata(),
        "metrics": {k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()},
        "xgboost_params": {**{k: v for k, v in params.items() if k != "nthread"}, "num_boost_round": best.n_trees},
        "data": source.description,
        "validation_folds": [
            {"train_start": m["start"], "train_end": m["end"], "valid_start": m["test_start"], "valid_end": m["test_end"]}
            for m in (f.as_metadata() for f in usable)
        ],
    }

    t0 = time.perf_counter()
    tag = None
    if config.save:
        rep.stage("Saving to the BentoML model store", total=1)
        from fraudpipeline.training.store import save_to_bentoml

        tag = save_to_bentoml(booster, metadata, config.model_name)
        rep.advance()
    exported = None
    if config.export_dir is not None:
        from fraudpipeline.training.store import export_files

        exported = export_files(booster, {**metadata, "model_tag": tag}, config.export_dir)
    timings["save_s"] = time.perf_counter() - t0

    summary = {
        "auc": round(metrics["auc"], 4),
        "ap": round(metrics["ap"], 4),
        "cp100": round(metrics["cp100"], 4),
        "n_train": metrics["n_train"],
        "n_test": metrics["n_test"],
        "n_test_frauds": metrics["n_test_frauds"],
        "model_tag": tag,
        "threshold": round(float(threshold), 6),
        "precision_at_threshold": round(metrics["precision_at_threshold"], 4),
        "recall_at_threshold": round(metrics["recall_at_threshold"], 4),
        "params": {"learning_rate": best.learning_rate, "max_depth": best.max_depth, "n_trees": best.n_trees,
                   "tree_method": params["tree_method"], "max_bin": params["max_bin"], "base_score": params["base_score"]},
        "validation": {k: round(metrics[k], 4) for k in ("validation_auc", "validation_ap", "validation_cp100") if k in metrics},
        "train_window": dates.as_metadata(),
        "data": source.description,
        "export": exported,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }
    return TrainResult(summary=summary, booster=booster, metadata=metadata)
