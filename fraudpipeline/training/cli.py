"""`fraudpipe train`: features, XGBoost, evaluation on the handbook split, model store."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from fraudpipeline.model import MODEL_NAME


def _parse_day(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise typer.BadParameter(f"{value!r} is not a date; use YYYY-MM-DD, e.g. 2018-07-25") from None


class _RichReporter:
    """Progress bars on stderr, one per stage, so stdout stays clean JSON."""

    def __init__(self, progress, console):
        self.progress = progress
        self.console = console
        self.task = None

    def stage(self, name: str, total: int | None = None) -> None:
        if self.task is not None:
            t = self.progress.tasks[self.task]
            self.progress.update(self.task, completed=t.total if t.total is not None else 1, total=t.total or 1)
        self.task = self.progress.add_task(name, total=total)

    def advance(self, n: int = 1) -> None:
        if self.task is not None:
            self.progress.advance(self.task, n)

    def note(self, message: str) -> None:
        self.console.print(f"[yellow]note:[/] {message}")

    def finish(self) -> None:
        self.stage("Done", total=1)
        self.advance()


def command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="Transaction parquet file(s); repeat for several. "
            "Default: $FRAUDPIPE_DATA, else ../shared/datasets/fraud-handbook/transactions.parquet, "
            "else the built-in simulator.",
        ),
    ] = None,
    train_start: Annotated[str, typer.Option(help="First training day (YYYY-MM-DD).")] = "2018-07-25",
    train_days: Annotated[int, typer.Option(help="Days in the training window.")] = 7,
    delay_days: Annotated[int, typer.Option(help="Days between training and test windows (label delay).")] = 7,
    test_days: Annotated[int, typer.Option(help="Days in the test window.")] = 7,
    validation_folds: Annotated[
        int,
        typer.Option(
            help="Validation folds ending with the training window, for the hyper-parameter search (0: none)."
        ),
    ] = 4,
    threads: Annotated[int, typer.Option(help="XGBoost threads.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed of XGBoost.")] = 0,
    export: Annotated[
        Path | None,
        typer.Option("--export", help="Also write model.ubj and model.json (metadata) into this directory."),
    ] = None,
    save: Annotated[bool, typer.Option(help="Save the model to the BentoML model store ($BENTOML_HOME).")] = True,
    model_name: Annotated[str, typer.Option(help="Name in the BentoML model store.")] = MODEL_NAME,
    quick: Annotated[
        bool,
        typer.Option(
            "--quick",
            help="A first run in seconds (the local mode's): no hyper-parameter search, the parameters "
            "the full search picks on the handbook split (lr 0.1, depth 3, 200 trees), the threshold from one "
            "validation week instead of four.",
        ),
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print only the result as JSON on stdout.")] = False,
) -> None:
    """Train the XGBoost fraud model on the handbook split and report AUC, AP and CP@100."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

    from fraudpipeline.data import DataSetError
    from fraudpipeline.training.pipeline import TrainConfig, TrainingError, run

    start = _parse_day(train_start)
    err = Console(stderr=True)
    try:
        config = TrainConfig(
            train_start=start,
            train_days=train_days,
            delay_days=delay_days,
            test_days=test_days,
            data=data,
            validation_folds=validation_folds,
            threads=threads,
            seed=seed,
            save=save,
            model_name=model_name,
            export_dir=export,
            quick=quick,
        )
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None

    columns = (
        SpinnerColumn(),
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    try:
        with Progress(*columns, console=err, transient=False) as progress:
            reporter = _RichReporter(progress, err)
            result = run(config, reporter)
            reporter.finish()
    except (DataSetError, TrainingError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from None

    summary = result.summary
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
        return
    from rich.table import Table

    out = Console()
    table = Table(title=f"Test window {summary['train_window']['test_start']}..{summary['train_window']['test_end']}")
    for col in ("AUC ROC", "Average precision", "CP@100", "train rows", "test rows (frauds)"):
        table.add_column(col)
    table.add_row(
        f"{summary['auc']:.3f}",
        f"{summary['ap']:.3f}",
        f"{summary['cp100']:.3f}",
        str(summary["n_train"]),
        f"{summary['n_test']} ({summary['n_test_frauds']})",
    )
    out.print(table)
    out.print(
        f"model: {summary['model_tag'] or '(not saved)'}  threshold: {summary['threshold']:.4f}  "
        f"params: {summary['params']}"
    )
    if summary["export"]:
        out.print(f"exported: {summary['export']['model']} + {summary['export']['metadata']}")
    out.print_json(json.dumps(summary))
