"""`fraudpipe data`: the data sets the project uses."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(help="Data sets: the regenerated Fraud Detection Handbook transactions.", no_args_is_help=True)


@app.command("handbook")
def handbook(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Also write the parquet here (the cached copy stays where it is)."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Generate again even when the cache has it.")] = False,
) -> None:
    """Regenerate the Fraud Detection Handbook's simulated data set (Le Borgne et al., Chapter 3).

    1,754,155 transactions of 2018-04-01..2018-09-30 (14,681 frauds), equal row for row to the
    handbook's published files, in the same columns. Cached under $FRAUDPIPE_CACHE/datasets
    (default ~/.cache/fraudpipeline/datasets), where `train`, `replay`, `up`, the benchmarks and
    the tests read it when neither --data nor $FRAUDPIPE_DATA is given.
    """
    from rich.console import Console

    from fraudpipeline.data.handbook import CITATION, cached_path, ensure_handbook

    err = Console(stderr=True, soft_wrap=True)
    cached = cached_path()
    started = time.perf_counter()
    generated = force or not cached.exists()
    path = ensure_handbook(regenerate=force)
    if generated:
        err.print(f"generated in {time.perf_counter() - started:.1f} s: {path}")
    else:
        err.print(f"already cached: {path}")
    if out is not None:
        out = out.expanduser()
        if out.is_dir():
            out = out / "transactions.parquet"
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(f".{out.name}.tmp")
        shutil.copyfile(path, tmp)
        tmp.replace(out)
        err.print(f"written: {out}")
    err.print(f"[dim]source: {CITATION}[/]")
    print(out if out is not None else path)
