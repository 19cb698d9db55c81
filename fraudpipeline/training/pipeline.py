"""`fraudpipe train` end to end: load, features, validation search, fit, test, save.

The split is the handbook's (Chapter 3): a training window, a label delay, a test window with
already-known compromised cards removed. Hyper-parameters and the decision threshold come
from validation folds that end with the training window (see model.py); the test window is
used once, to report the figures.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Protocol

import pandas as pd

from fraudpipeline.features import FEATURE_NAMES, LABEL_DELAY_DAYS, TERMINAL_WINDOWS_DAYS
from fraudpipeline.model import MODEL_NAME, ModelMetadata, export_files, tag_problem
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
    data: Sequence[Path] | None = None  # None: $FRAUDPIPE_DATA, else the regenerated handbook data set
    validation_folds: int = 4  # 0: no search, fixed parameters
    threads: int = 2
    seed: int = 0
    save: bool = True
    model_name: str = MODEL_NAME
    export_dir: Path | None = None
    quick: bool = False  # one validation fold, one candidate (models.QUICK_CHOICE): for a first local run

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
        if tag_problem(f"{self.model_name}:v1"):
            raise ValueError(
                f"--model-name {self.model_name!r} is not a BentoML model name: 1-63 lowercase "
                f"letters, digits, '.', '_' or '-', starting and ending with a letter or digit"
            )
        if self.quick:
            self.validation_folds = min(self.validation_folds, 1)

    @property
    def dates(self) -> SplitDates:
        return SplitDates(self.train_start, self.train_days, self.delay_days, self.test_days)

    def fold_dates(self) -> list[SplitDates]:
        """Validation folds: each validation window ends within the training window."""
        d = self.dates
        out = []
        for k in range(self.validation_folds):
            valid_start = d.train_end - timedelta(days=self.test_days * (k + 1))
            out.append(
                SplitDates(
                    valid_start - timedelta(days=self.delay_days + self.train_days),
                    self.train_days,
                    self.delay_days,
                    self.test_days,
                )
            )
        return out


@dataclass
class TrainResult:
    summary: dict[str, Any]
    booster: Any = field(repr=False)
    metadata: ModelMetadata = field(repr=False)


class TrainingError(RuntimeError):
    """The data cannot support the requested split."""


@dataclass
class LoadedData:
    table: pd.DataFrame
    source: Any  # fraudpipeline.data.DataSource
    folds: list[SplitDates]  # the validation folds the data has history for


@dataclass
class Choice:
    best: models.Candidate
    threshold: float
    search: models.SearchResult | None


@dataclass
class FinalModel:
    booster: Any
    params: dict[str, object]
    train_idx: pd.Index
    test_idx: pd.Index


def _day(ts: pd.Timestamp) -> date:
    return ts.normalize().date()


@contextmanager
def _timed(timings: dict[str, float], key: str) -> Iterator[None]:
    started = time.perf_counter()
    try:
        yield
    finally:
        timings[key] = time.perf_counter() - started


def load_data(config: TrainConfig, rep: Reporter) -> LoadedData:
    """The transactions from 37 days before the earliest training window to the test window's end."""
    from fraudpipeline.data import resolve_transactions

    dates = config.dates
    folds = config.fold_dates()
    earliest_train = min([dates.train_start, *(f.train_start for f in folds)])
    load_start = earliest_train - timedelta(days=HISTORY_DAYS + 1)
    rep.stage("Loading transactions")
    table, source = resolve_transactions(
        list(config.data) if config.data else None,
        start=pd.Timestamp(load_start),
        end=pd.Timestamp(dates.test_end),
    )
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
        rep.note(
            f"only {(dates.train_start - first_day).days} days of history before training: "
            f"the first rows' {HISTORY_DAYS}-day features are truncated"
        )
    usable = [f for f in folds if f.train_start - timedelta(days=HISTORY_DAYS) >= first_day]
    if len(usable) < len(folds):
        rep.note(f"{len(folds) - len(usable)} validation fold(s) dropped: not enough history before {first_day}")
    return LoadedData(table, source, usable)


def compute_feature_table(table: pd.DataFrame, rep: Reporter) -> pd.DataFrame:
    from fraudpipeline.features.offline import compute_features

    rep.stage("Computing features", total=1)
    features = compute_features(table)
    rep.advance()
    return features


def choose_parameters(config: TrainConfig, data: LoadedData, features: pd.DataFrame, rep: Reporter) -> Choice:
    """Hyper-parameters and threshold from the validation folds (never the test window)."""
    fold_splits = [split(data.table, f) for f in data.folds]
    if not fold_splits:
        rep.note("no validation fold: fixed parameters and threshold 0.5")
        return Choice(models.Candidate(**models.DEFAULT_CHOICE), 0.5, None)
    grid = models.QUICK_GRID if config.quick else models.FULL_GRID
    n_fits = len(grid["learning_rates"]) * len(grid["max_depths"]) * len(fold_splits)
    rep.stage(f"Validation search ({len(fold_splits)} fold{'s' if len(fold_splits) > 1 else ''})", total=n_fits)
    result = models.search(
        data.table, features, fold_splits, threads=config.threads, seed=config.seed, on_fit=rep.advance, **grid
    )
    return Choice(result.best, models.f1_threshold(result.labels, result.scores), result)


def fit_final(
    config: TrainConfig, data: LoadedData, features: pd.DataFrame, best: models.Candidate, rep: Reporter
) -> FinalModel:
    """The model trained on the training window with the chosen parameters."""
    dates, table = config.dates, data.table
    train_idx, test_idx = split(table, dates)
    if len(test_idx) == 0 or table.loc[test_idx, "fraud"].nunique() < 2:
        raise TrainingError(
            f"the test window {dates.test_start}..{dates.test_end - timedelta(days=1)} "
            f"needs both genuine and fraudulent transactions"
        )
    if table.loc[train_idx, "fraud"].nunique() < 2:
        raise TrainingError("the training window needs both genuine and fraudulent transactions")
    rep.stage("Training the model", total=1)
    params = models.xgb_params(best, threads=config.threads, seed=config.seed)
    booster = models.fit(features.loc[train_idx], table.loc[train_idx, "fraud"].to_numpy(), params, best.n_trees)
    rep.advance()
    return FinalModel(booster, params, train_idx, test_idx)


def evaluate_on_test(
    data: LoadedData, features: pd.DataFrame, final: FinalModel, choice: Choice, rep: Reporter
) -> dict[str, Any]:
    """AUC, AP and CP@100 on the test window (used once), plus the alerts at the threshold."""
    rep.stage("Evaluating on the test window", total=1)
    table = data.table
    test = table.loc[final.test_idx]
    scores = models.predict(final.booster, features.loc[final.test_idx])
    metrics: dict[str, Any] = models.evaluate(test, scores)
    alerts = scores >= choice.threshold
    y = test["fraud"].to_numpy().astype(bool)
    metrics.update(
        {
            "precision_at_threshold": float((alerts & y).sum() / max(alerts.sum(), 1)),
            "recall_at_threshold": float((alerts & y).sum() / max(y.sum(), 1)),
            "n_train": int(len(final.train_idx)),
            "n_train_frauds": int(table.loc[final.train_idx, "fraud"].sum()),
            "n_test": int(len(final.test_idx)),
            "n_test_frauds": int(y.sum()),
        }
    )
    if choice.search:
        best = choice.best
        chosen = next(
            r
            for r in choice.search.table
            if (r["learning_rate"], r["max_depth"], r["n_trees"]) == (best.learning_rate, best.max_depth, best.n_trees)
        )
        metrics.update({f"validation_{m}": chosen[m] for m in ("auc", "ap", "cp100")})
    rep.advance()
    return metrics


def build_metadata(
    config: TrainConfig, data: LoadedData, final: FinalModel, choice: Choice, metrics: dict[str, Any]
) -> ModelMetadata:
    return ModelMetadata(
        features=list(FEATURE_NAMES),
        threshold=float(choice.threshold),
        train_window=config.dates.as_metadata(),
        metrics={k: (round(v, 6) if isinstance(v, float) else v) for k, v in metrics.items()},
        xgboost_params={
            **{k: v for k, v in final.params.items() if k != "nthread"},
            "num_boost_round": choice.best.n_trees,
        },
        data=data.source.description,
        quick=config.quick,
        validation_folds=[
            {
                "train_start": m["start"],
                "train_end": m["end"],
                "valid_start": m["test_start"],
                "valid_end": m["test_end"],
            }
            for m in (f.as_metadata() for f in data.folds)
        ],
    )


def save_model(
    config: TrainConfig, booster: Any, metadata: ModelMetadata, rep: Reporter
) -> tuple[ModelMetadata, dict[str, str] | None]:
    """Into the BentoML store (the tag goes into the metadata) and/or the export directory."""
    if config.save:
        rep.stage("Saving to the BentoML model store", total=1)
        from fraudpipeline.training.store import save_to_bentoml

        tag = save_to_bentoml(booster, metadata, config.model_name)
        metadata = metadata.model_copy(update={"tag": tag})
        rep.advance()
    exported = None
    if config.export_dir is not None:
        exported = export_files(booster, metadata, config.export_dir)
    return metadata, exported


def summarize(
    config: TrainConfig,
    metadata: ModelMetadata,
    final: FinalModel,
    choice: Choice,
    metrics: dict[str, Any],
    exported: dict[str, str] | None,
    timings: dict[str, float],
) -> dict[str, Any]:
    best, params = choice.best, final.params
    return {
        "auc": round(metrics["auc"], 4),
        "ap": round(metrics["ap"], 4),
        "cp100": round(metrics["cp100"], 4),
        "n_train": metrics["n_train"],
        "n_test": metrics["n_test"],
        "n_test_frauds": metrics["n_test_frauds"],
        "model_tag": metadata.tag,
        "threshold": round(float(choice.threshold), 6),
        "precision_at_threshold": round(metrics["precision_at_threshold"], 4),
        "recall_at_threshold": round(metrics["recall_at_threshold"], 4),
        "params": {
            "learning_rate": best.learning_rate,
            "max_depth": best.max_depth,
            "n_trees": best.n_trees,
            "tree_method": params["tree_method"],
            "max_bin": params["max_bin"],
            "base_score": params["base_score"],
        },
        "validation": {
            k: round(metrics[k], 4) for k in ("validation_auc", "validation_ap", "validation_cp100") if k in metrics
        },
        "quick": config.quick,
        # What the validation search fitted: candidates (learning rate x depth) over folds.
        "search": {
            "candidates": len(choice.search.table) if choice.search is not None else 0,
            "folds": len(metadata.get("validation_folds") or []),
        },
        "train_window": config.dates.as_metadata(),
        "data": metadata.get("data"),
        "export": exported,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
        # What else ran on the machine: a train time means little without it.
        "load_average_1min": round(os.getloadavg()[0], 2),
    }


def run(config: TrainConfig, reporter: Reporter | None = None) -> TrainResult:
    """Load, features, validation search, final fit, test once, save: one named stage each."""
    rep = reporter or _Silent()
    timings: dict[str, float] = {}
    with _timed(timings, "load_s"):
        data = load_data(config, rep)
    with _timed(timings, "features_s"):
        features = compute_feature_table(data.table, rep)
    with _timed(timings, "search_s"):
        choice = choose_parameters(config, data, features, rep)
    with _timed(timings, "fit_s"):
        final = fit_final(config, data, features, choice.best, rep)
    with _timed(timings, "evaluate_s"):
        metrics = evaluate_on_test(data, features, final, choice, rep)
    metadata = build_metadata(config, data, final, choice, metrics)
    with _timed(timings, "save_s"):
        metadata, exported = save_model(config, final.booster, metadata, rep)
    summary = summarize(config, metadata, final, choice, metrics, exported, timings)
    return TrainResult(summary=summary, booster=final.booster, metadata=metadata)
