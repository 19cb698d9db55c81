"""skaffold.yaml, the Dockerfiles and .dockerignore: valid for skaffold's schema and for the real
skaffold (v2.19.0, built into the dev cache), images whose Dockerfiles find their files in a build
context that leaves out everything else."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import ci_skip_policy
import jsonschema
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
SCHEMA = Path(
    os.environ.get("FRAUDPIPE_SKAFFOLD_SCHEMA", ROOT.parent / "shared" / "schemas" / "skaffold-v4beta14.json")
)
DOCKERFILES = ["operator/Dockerfile", "serving/Dockerfile", "flink/Dockerfile"]
PROFILES = [None, "operator-only"]


@pytest.fixture(scope="module")
def skaffold() -> dict:
    return yaml.safe_load((ROOT / "skaffold.yaml").read_text())


def test_skaffold_yaml_matches_the_released_schema(skaffold):
    if not SCHEMA.exists():
        pytest.skip(f"skaffold's JSON schema not found at {SCHEMA}: set FRAUDPIPE_SKAFFOLD_SCHEMA")
    assert skaffold["apiVersion"] == "skaffold/v4beta14"
    schema = json.loads(SCHEMA.read_text())
    errors = sorted(jsonschema.Draft7Validator(schema).iter_errors(skaffold), key=lambda e: list(e.path))
    assert not errors, "\n".join(f"{list(e.path)}: {e.message}" for e in errors)


def test_every_image_is_built_and_referenced(skaffold):
    images = {a["image"]: a for a in skaffold["build"]["artifacts"]}
    assert {i.rsplit("/", 1)[-1] for i in images} == {
        "fraudpipeline-operator",
        "fraudpipeline-serving",
        "fraudpipeline-flink",
    }
    for image, art in images.items():
        assert (ROOT / art["context"] / art["docker"]["dockerfile"]).exists(), image
    # The example pipeline names the built images, so skaffold can swap in what it built.
    docs = [yaml.safe_load((ROOT / f).read_text()) for f in skaffold["manifests"]["rawYaml"]]
    (example,) = [d for d in docs if d["kind"] == "FraudPipeline"]
    for field in ("model", "stream"):
        assert example["spec"][field]["image"].rsplit(":", 1)[0] in images
    chart_values = yaml.safe_load((ROOT / "charts/fraudpipeline/values.yaml").read_text())
    assert chart_values["operator"]["image"]["repository"] in images


def test_the_example_namespace_is_created_by_a_hook_and_never_deployed(skaffold):
    """A Namespace among skaffold's manifests is deleted by `skaffold delete`, with the Strimzi Kafka
    cluster the example's topics live in: it is created before the deploy instead, when missing."""
    docs = [yaml.safe_load((ROOT / f).read_text()) for f in skaffold["manifests"]["rawYaml"]]
    assert "Namespace" not in {d["kind"] for d in docs}
    example_ns = next(d["metadata"]["namespace"] for d in docs if d["kind"] == "FraudPipeline")
    (hook,) = skaffold["deploy"]["kubectl"]["hooks"]["before"]
    script = hook["host"]["command"][-1]
    assert f"get namespace {example_ns}" in script and "|| kubectl" in script
    assert f"create namespace {example_ns}" in script
    assert "delete" not in script and "apply" not in script


def test_operator_only_profile_leaves_no_deployer_without_manifests(skaffold):
    (profile,) = [p for p in skaffold["profiles"] if p["name"] == "operator-only"]
    removed = {op["path"] for op in profile["patches"] if op["op"] == "remove"}
    # Without raw manifests, a kubectl deployer falls back to k8s/*.yaml and fails.
    assert {"/manifests/rawYaml", "/deploy/kubectl"} <= removed


def test_the_model_tag_template_is_never_no_value(skaffold):
    (serving,) = [a for a in skaffold["build"]["artifacts"] if a["image"].endswith("-serving")]
    template = serving["docker"]["buildArgs"]["MODEL_TAG"]
    # `{{.X}}` renders "<no value>" when X is unset; `default ""` renders nothing.
    assert template == '{{default "" .FRAUDPIPE_MODEL_TAG}}'


# ------------------------------------------------------------------------------ Dockerfiles


def instructions(dockerfile: str) -> list[tuple[str, str]]:
    from test_image_contents import instructions as parse

    return parse(ROOT / dockerfile)


def copy_sources(dockerfile: str) -> list[str]:
    """Sources of every COPY from the build context (not from another stage)."""
    out = []
    for word, args in instructions(dockerfile):
        if word != "COPY":
            continue
        parts = shlex.split(args)
        if any(p.startswith("--from") for p in parts):
            continue
        out += [p for p in parts if not p.startswith("--")][:-1]
    return out


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_copies_only_files_that_exist(dockerfile):
    for src in copy_sources(dockerfile):
        if src.startswith("build/"):
            continue  # produced by the documented build step (the exported model)
        assert list(ROOT.glob(src.rstrip("/"))), f"{dockerfile}: COPY source {src} does not exist"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_dockerfile_pins_its_base_runs_as_non_root_and_says_how_it_is_checked(dockerfile):
    steps = instructions(dockerfile)
    for word, args in steps:
        if word == "FROM":
            image = args.split()[0]
            assert ":" in image and re.search(r":\d+\.\d+\.\d+", image), f"{dockerfile}: base {image} not pinned"
            assert not image.endswith(":latest")
    users = [args for word, args in steps if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), f"{dockerfile} runs as root"
    assert any(word == "HEALTHCHECK" for word, _ in steps), f"{dockerfile}: no HEALTHCHECK (or HEALTHCHECK NONE)"


def test_flink_image_takes_the_connector_with_maven_and_the_reporter_from_plugins():
    from fp_flink.connector import KAFKA_CONNECTOR  # the local runs' connector, same coordinates

    group_artifact, version = KAFKA_CONNECTOR.rsplit(":", 1)
    text = (ROOT / "flink/Dockerfile").read_text()
    assert "curl" not in text and "wget" not in text and "https://" not in text
    assert "maven-dependency-plugin:3.8.1:copy" in text
    assert f"ARG KAFKA_CONNECTOR={version}" in text
    assert f"-Dartifact={group_artifact}:${{KAFKA_CONNECTOR}}" in text
    # Flink 2.x ships the reporter in plugins/ already; there is none in opt/ to copy.
    assert "cp /opt/flink/opt/flink-metrics-prometheus" not in text
    assert "/opt/flink/plugins/metrics-prometheus/flink-metrics-prometheus-" in text
    # The S3 plugin the operator enables (ENABLE_BUILT_IN_PLUGINS) must be in opt/.
    from fp_operator.builders.flink_deployment import S3_PLUGIN

    assert f"/opt/flink/opt/{S3_PLUGIN['v2_2']}" in text


def _model_tag_guard() -> str:
    text = (ROOT / "serving/Dockerfile").read_text().replace("\\\n", " ")
    match = re.search(r"(printf '%s' \"\$\{MODEL_TAG\}\".*?exit 1; \})", text)
    assert match, "serving/Dockerfile: the MODEL_TAG check is gone"
    return match.group(1)


@pytest.mark.parametrize(
    ("tag", "ok"),
    [("fraud-xgb:q3x7kzd2", True), ("", False), ("<no value>", False), ("fraud-xgb:latest", False), ("x", False)],
)
def test_serving_image_refuses_a_missing_or_floating_model_tag(tag, ok):
    r = subprocess.run(
        ["sh", "-c", _model_tag_guard()],
        env={"MODEL_TAG": tag, "PATH": os.environ["PATH"]},
        capture_output=True,
        text=True,
    )
    assert (r.returncode == 0) == ok, r.stderr


# ------------------------------------------------------------------------------ .dockerignore


def _dockerignore() -> list[tuple[bool, str]]:
    """(exclude?, pattern) lines, as Docker reads them (a leading '/' and './' dropped)."""
    out = []
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line[1:] if negate else line
        out.append((not negate, pattern.strip().lstrip("/").removeprefix("./").rstrip("/")))
    return out


def _matches(pattern: str, path: str) -> bool:
    """Docker's rule: the pattern (filepath.Match, plus ** for any number of directories) matches
    the path or one of its parent directories."""
    regex = "^" + re.escape(pattern).replace(r"\*\*/", "(.*/)?").replace(r"\*\*", ".*").replace(r"\*", "[^/]*")
    regex = regex.replace(r"\?", "[^/]") + "$"
    parts = path.split("/")
    return any(re.match(regex, "/".join(parts[:i])) for i in range(1, len(parts) + 1))


def in_context(path: str) -> bool:
    """Whether Docker sends `path` (relative to the repository root) to the builder: the last
    matching line wins."""
    included = True
    for exclude, pattern in _dockerignore():
        if _matches(pattern, path):
            included = not exclude
    return included


def test_the_build_context_leaves_out_the_venv_state_tests_and_dev_tools():
    for path in (
        ".venv/lib/python3.11/site-packages/x.py",
        ".fraudpipe/dev/env.json",
        "tests/conftest.py",
        "devtools/fp_devtools/cli.py",
        ".git/HEAD",
        "uv.lock",
        "fraudpipeline/__pycache__/spec.cpython-311.pyc",
        "docs/operator.md",
        "examples/full.yaml",
    ):
        assert not in_context(path), f"{path} would be sent to the image builder"


@pytest.mark.parametrize("dockerfile", DOCKERFILES)
def test_the_build_context_holds_every_file_the_dockerfile_copies(dockerfile):
    assert in_context(dockerfile)
    for src in copy_sources(dockerfile):
        if src.startswith("build/"):
            assert in_context(src), f"{dockerfile}: {src} is left out of the build context"
            continue
        base = ROOT / src.rstrip("/")
        files = [base] if base.is_file() else [p for p in base.rglob("*") if p.is_file()]
        files = [f for f in files if "__pycache__" not in f.parts]
        assert files, src
        for f in files:
            rel = f.relative_to(ROOT).as_posix()
            if fnmatch.fnmatch(rel, "flink/model/*") and f.name != ".gitkeep":
                continue  # a model exported for a local build
            assert in_context(rel), f"{dockerfile}: {rel} is left out of the build context"


# ------------------------------------------------------------------------------ the real skaffold


@pytest.fixture(scope="module")
def skaffold_bin() -> str:
    from fp_devtools.cache import MissingPrerequisite
    from fp_devtools.gotools import skaffold_binary

    try:
        return str(skaffold_binary())
    except MissingPrerequisite as exc:
        if ci_skip_policy.in_ci():
            raise
        pytest.skip(f"skaffold cannot be built here: {exc} (`make servers` builds it)")


def _helm_dir() -> str:
    from fp_devtools import builds
    from fp_devtools.cache import MissingPrerequisite

    try:
        return str(builds.helm_binary().parent)
    except MissingPrerequisite as exc:
        if ci_skip_policy.in_ci():
            raise
        pytest.skip(f"helm cannot be built here: {exc} (`make servers` builds it)")


def _skaffold(binary: str, *args: str, profile: str | None, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {
        "PATH": f"{_helm_dir()}:{os.environ['PATH']}",
        "HOME": str(tmp_path),  # skaffold's global config and cache go here, not into ~
        "SKAFFOLD_UPDATE_CHECK": "false",
        "SKAFFOLD_INTERACTIVE": "false",
    }
    argv = [binary, *args, "--filename", str(ROOT / "skaffold.yaml")] + (["--profile", profile] if profile else [])
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=180)


@pytest.mark.parametrize("profile", PROFILES)
def test_skaffold_diagnose_reads_every_profile(skaffold_bin, tmp_path, profile):
    r = _skaffold(skaffold_bin, "diagnose", "--yaml-only", profile=profile, tmp_path=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    config = yaml.safe_load(r.stdout)
    assert config["apiVersion"] == "skaffold/v4beta14"
    if profile == "operator-only":
        assert "kubectl" not in config["deploy"] and not (config.get("manifests") or {}).get("rawYaml")
        assert [a["image"] for a in config["build"]["artifacts"]] == ["ghcr.io/frauddetect/fraudpipeline-operator"]


@pytest.mark.parametrize("profile", PROFILES)
def test_skaffold_renders_every_profile_offline(skaffold_bin, tmp_path, profile):
    r = _skaffold(skaffold_bin, "render", "--offline=true", "--digest-source=tag", profile=profile, tmp_path=tmp_path)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    docs = [d for d in yaml.safe_load_all(r.stdout) if d]
    kinds = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "fraudpipeline") in kinds  # the chart's operator (fullname: release name)
    operator = next(d for d in docs if d["kind"] == "Deployment")
    assert operator["spec"]["template"]["spec"]["containers"][0]["image"].startswith(
        "ghcr.io/frauddetect/fraudpipeline-operator:"
    )
    pipelines = [d for d in docs if d["kind"] == "FraudPipeline"]
    assert ("Namespace", "fraud") not in kinds  # created by a hook: `skaffold delete` must not remove it
    if profile == "operator-only":
        assert not pipelines
    else:
        assert len(pipelines) == 1
        spec = pipelines[0]["spec"]
        assert spec["model"]["image"].startswith("ghcr.io/frauddetect/fraudpipeline-serving:")
        assert spec["stream"]["image"].startswith("ghcr.io/frauddetect/fraudpipeline-flink:")
