"""`fraudpipe train`: features, XGBoost, evaluation on the handbook split, model store."""

from __future__ import annotations

import json
import sys
from datetime import date
from pathlib import Path
from typing import Annotated

import typer

from fraudpipeline.model import MODEL_NAME, split_tag, tag_problem


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


def _stored(tag: str) -> str | None:
    """Why `tag` cannot be saved (the store already holds it), or None."""
    import bentoml
    from bentoml.exceptions import NotFound

    try:
        found = bentoml.models.get(tag)
    except NotFound:
        return None
    return (
        f"the BentoML model store already holds it ({found.path}): serve it as it is, or delete it first with "
        f"`bentoml models delete {tag}`"
    )


def _save_as(result, tag: str, export: Path | None, reporter: _RichReporter) -> None:
    """Save the trained model under `tag` (then export it), and say so in the summary."""
    import time

    from fraudpipeline.model import export_files
    from fraudpipeline.training.store import save_to_bentoml

    started = time.perf_counter()
    reporter.stage(f"Saving to the BentoML model store as {tag}", total=1)
    saved = save_to_bentoml(result.booster, result.metadata, tag)
    if saved != tag:
        raise RuntimeError(f"BentoML saved the model as {saved}, not {tag}")
    result.metadata = result.metadata.model_copy(update={"tag": saved})
    reporter.advance()
    result.summary["model_tag"] = saved
    if export is not None:
        result.summary["export"] = export_files(result.booster, result.metadata, export)
    result.summary["timings_s"]["save_s"] = round(time.perf_counter() - started, 2)


def command(
    data: Annotated[
        list[Path] | None,
        typer.Option(
            "--data",
            help="Transaction parquet file(s); repeat for several. "
            "Default: $FRAUDPIPE_DATA, else the Fraud Detection Handbook's data set, regenerated "
            "into the cache on first use (`fraudpipe data handbook`).",
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
    model_tag: Annotated[
        str | None,
        typer.Option(
            "--model-tag",
            help="Save under this exact tag, name:version (e.g. the modelTag a FraudPipeline names), instead of a "
            "generated version. Refused if the store already holds it.",
        ),
    ] = None,
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
    if model_tag is not None:
        # The model contract's tag rule; checked, with the store, before any training.
        problem = tag_problem(model_tag)
        if problem:
            err.print(f"[red]error:[/] --model-tag {problem}")
            raise typer.Exit(2)
        if not save:
            err.print("[red]error:[/] --model-tag names the tag to save under: drop --no-save")
            raise typer.Exit(2)
        taken = _stored(model_tag)
        if taken:
            err.print(f"[red]error:[/] --model-tag {model_tag}: {taken}")
            raise typer.Exit(2)
        model_name = split_tag(model_tag)[0]
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
            # With --model-tag the model is saved (then exported) below, under that tag.
            save=save and model_tag is None,
            model_name=model_name,
            export_dir=export if model_tag is None else None,
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
            if model_tag is not None:
                _save_as(result, model_tag, export, reporter)
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
