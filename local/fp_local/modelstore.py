"""The model the spec names: found in the BentoML store, else trained under that tag; then exported.

The scoring service serves the tag from the store ($BENTOML_HOME, BentoML's default ~/bentoml);
the streaming job's embedded mode reads the same model exported as model.ubj + model.json
(fraudpipeline.model's contract) into the state folder. BentoML is imported only in child
processes (`fraudpipe train`, `python -m fp_local.modelstore export`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from fraudpipeline.model import EXPORT_METADATA_FILE, ModelMetadata, split_tag


class ModelUnavailable(RuntimeError):
    """The model could not be trained or exported; the message says why and what to do."""


def store_home() -> Path:
    return Path(os.environ.get("BENTOML_HOME") or Path.home() / "bentoml").expanduser().resolve()


def in_store(home: Path, tag: str) -> bool:
    name, version = split_tag(tag)
    return (home / "models" / name / version / "model.yaml").is_file()


def exported(export_dir: Path, tag: str) -> ModelMetadata | None:
    """The exported model's metadata when `export_dir` holds exactly `tag`."""
    sidecar = export_dir / EXPORT_METADATA_FILE
    if not sidecar.is_file():
        return None
    try:
        meta = ModelMetadata.from_mapping(json.loads(sidecar.read_text()), str(sidecar))
    except (ValueError, OSError):
        return None
    return meta if meta.tag == tag and (export_dir / "model.ubj").is_file() else None


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("FRAUDPIPE_MODEL_TAG", "FRAUDPIPE_THRESHOLD")}
    env.update({"BENTOML_HOME": str(home), "BENTOML_DO_NOT_TRACK": "true"})
    return env


def train(tag: str, home: Path, export_dir: Path, log: Path) -> dict[str, Any]:
    """`fraudpipe train --quick --model-tag TAG --export DIR`; its progress bars go to this stderr."""
    log.parent.mkdir(parents=True, exist_ok=True)
    cmd = [
        sys.executable,
        "-m",
        "fraudpipeline.cli",
        "train",
        "--quick",
        "--model-tag",
        tag,
        "--export",
        str(export_dir),
    ]
    done = subprocess.run([*cmd, "--json"], env=_env(home), stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise ModelUnavailable(
            f"`fraudpipe train --quick --model-tag {tag}` failed (exit {done.returncode}), see above"
        )
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    log.write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def export(tag: str, home: Path, export_dir: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "fp_local.modelstore", "export", tag, str(export_dir)],
        env=_env(home),
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise ModelUnavailable(f"exporting {tag} from the BentoML store at {home} failed:\n{done.stderr[-2000:]}")


def _export_main(tag: str, directory: str) -> None:
    import bentoml

    from fraudpipeline.model import export_files

    model = bentoml.models.get(tag)
    meta = ModelMetadata.from_mapping(model.info.metadata, f"{tag} in the BentoML store")
    booster = bentoml.xgboost.load_model(model)
    export_files(booster, meta.model_copy(update={"tag": tag}), Path(directory))


if __name__ == "__main__":
    if len(sys.argv) != 4 or sys.argv[1] != "export":
        sys.exit("usage: python -m fp_local.modelstore export TAG DIR")
    _export_main(sys.argv[2], sys.argv[3])
