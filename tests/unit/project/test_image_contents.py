"""What each image carries, read from its Dockerfile: no test, benchmark or dev-server module, and
every project module its entry point imports (transitively, module-level and inside functions).

The file set follows Docker's rules: `COPY src... dest` from the repository root (a directory's
contents go into dest); Python finds modules through the image's PYTHONPATH and, when the
Dockerfile pip-installs /src, through the package roots of pyproject.toml under /src.
"""

from __future__ import annotations

import ast
import re
import shlex
import tomllib
from pathlib import Path, PurePosixPath

import pytest

ROOT = Path(__file__).resolve().parents[3]
PROJECT = ("fraudpipeline", "fp_operator", "fp_serving", "fp_flink", "fp_devtools")
# Module names that are never product code.
NOT_PRODUCT = re.compile(
    r"(^fp_devtools|^fraudpipeline\.dev)(\.|$)"
    r"|(^|\.)(tests?|conftest|test_\w+|\w+_test|bench\w*|benchmark\w*|\w*harness\w*|loadgen"
    r"|synthetic_model)(\.|$)"
)


def _package_roots() -> list[str]:
    """Where setuptools finds the project's packages (pyproject.toml), relative to the repository."""
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"]["find"]["where"]


def instructions(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments), continuation lines joined, comments dropped."""
    out, current = [], ""
    for line in dockerfile.read_text().splitlines():
        if line.lstrip().startswith("#") and not current:
            continue
        current += line.rstrip("\\").strip() + " " if line.rstrip().endswith("\\") else line.strip()
        if not line.rstrip().endswith("\\"):
            if current.strip():
                word, _, rest = current.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            current = ""
    return out


def _files(src: Path) -> list[Path]:
    if src.is_file():
        return [src]
    return [p for p in sorted(src.rglob("*")) if p.is_file() and "__pycache__" not in p.parts]


def image_files(dockerfile: Path) -> dict[PurePosixPath, Path]:
    """Image path -> repository file, for every file the Dockerfile copies from the repository."""
    out: dict[PurePosixPath, Path] = {}
    workdir = PurePosixPath("/")
    for word, args in instructions(dockerfile):
        if word == "WORKDIR":
            workdir = workdir / args
        if word != "COPY":
            continue
        parts = [p for p in shlex.split(args) if not p.startswith("--")]
        if any(p.startswith("--from") for p in shlex.split(args)):
            continue
        *sources, dest = parts
        target = workdir / dest
        for source in sources:
            src = ROOT / source
            assert src.exists() or source.startswith("build/"), f"{dockerfile}: COPY {source} does not exist"
            if not src.exists():
                continue
            for f in _files(src):
                if src.is_dir():
                    out[target / f.relative_to(src).as_posix()] = f
                elif dest.endswith("/") or len(sources) > 1:
                    out[target / f.name] = f
                else:
                    out[target] = f
    return out


def module_roots(dockerfile: Path) -> list[PurePosixPath]:
    """The image's PYTHONPATH, and the package roots of a `pip install ... /src` of the project."""
    roots: list[PurePosixPath] = []
    for word, args in instructions(dockerfile):
        if word == "ENV":
            for m in re.finditer(r"PYTHONPATH=(\S+)", args):
                roots += [PurePosixPath(p) for p in m.group(1).split(":") if p]
        if word == "RUN" and re.search(r"pip3? install\b[^&]*\s/src(\s|$)", args):
            roots += [PurePosixPath("/src") / w for w in _package_roots()]
    return roots


def image_modules(dockerfile: Path) -> set[str]:
    """Dotted names of the project modules Python finds in the image."""
    out = set()
    roots = module_roots(dockerfile)
    for path in image_files(dockerfile):
        if path.suffix != ".py":
            continue
        for root in roots:
            try:
                rel = path.relative_to(root)
            except ValueError:
                continue
            if rel.parts[0] in PROJECT:
                name = ".".join(rel.with_suffix("").parts)
                out.add(name[: -len(".__init__")] if name.endswith(".__init__") else name)
    return out


# ------------------------------------------------------------------------------------ import graph


def repo_module_file(name: str) -> Path | None:
    """The repository file of a project module (a package's __init__.py)."""
    for where in _package_roots():
        base = ROOT / where / Path(*name.split("."))
        for candidate in (base.with_suffix(".py"), base / "__init__.py"):
            if candidate.is_file():
                return candidate
    return None


def _runtime_imports(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    """Project modules `tree` imports at runtime (typing-only imports left out)."""
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, *([base] if base else [])])
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)  # `from package import module`
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(tree)
    return {n for n in found if n.split(".")[0] in PROJECT and repo_module_file(n) is not None}


def import_closure(entry: str) -> set[str]:
    """`entry` and every project module it imports, transitively, with their parent packages."""
    seen: set[str] = set()
    todo = [entry]
    while todo:
        name = todo.pop()
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # importing a.b.c runs a and a.b first
            todo.append(".".join(parts[:i])) if ".".join(parts[:i]) not in seen | {name} else None
        if name in seen:
            continue
        seen.add(name)
        path = repo_module_file(name)
        assert path is not None, f"{name} is not in the repository"
        todo += sorted(_runtime_imports(ast.parse(path.read_text()), name, path.name == "__init__.py") - seen)
    return seen


# ------------------------------------------------------------------------------------------ images


def _entry_operator(dockerfile: Path) -> list[str]:
    args = next(a for w, a in instructions(dockerfile) if w == "ENTRYPOINT")
    argv = [str(x) for x in ast.literal_eval(args)]
    module = argv[argv.index("-m") + 1]
    return [f"{module}.__main__" if repo_module_file(f"{module}.__main__") else module]


def _entry_serving(dockerfile: Path) -> list[str]:
    argv = [str(x) for x in ast.literal_eval(next(a for w, a in instructions(dockerfile) if w == "CMD"))]
    return [argv[argv.index("serve") + 1].split(":")[0]]


def _entry_flink(dockerfile: Path) -> list[str]:
    # The FlinkDeployment the operator builds runs `-pym <JOB_MODULE>` (docs/image-contracts.md).
    from fp_operator.builders.flink_deployment import JOB_MODULE

    if repo_module_file(JOB_MODULE) is None:
        pytest.skip(f"{JOB_MODULE} is not written yet: the flink image's entry point is checked once it exists")
    return [JOB_MODULE]


IMAGES = {"operator": _entry_operator, "serving": _entry_serving, "flink": _entry_flink}


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_holds_no_test_benchmark_or_dev_server_module(image):
    modules = image_modules(ROOT / image / "Dockerfile")
    assert modules, f"{image}: no project module found in the image"
    assert not sorted(m for m in modules if NOT_PRODUCT.search(m)), f"{image} ships non-product modules"


@pytest.mark.parametrize("image", sorted(IMAGES))
def test_image_holds_every_module_its_entry_point_imports(image):
    dockerfile = ROOT / image / "Dockerfile"
    modules = image_modules(dockerfile)
    for entry in IMAGES[image](dockerfile):
        needed = import_closure(entry)
        missing = sorted(needed - modules)
        assert not missing, f"{image}: {entry} imports modules the image lacks: {missing}"
        assert not sorted(m for m in needed if NOT_PRODUCT.search(m)), f"{entry} imports non-product modules"


def test_the_checks_see_what_they_should():
    """The parser on the operator image: its entry point, the shared package, no dev package."""
    dockerfile = ROOT / "operator" / "Dockerfile"
    modules = image_modules(dockerfile)
    assert {"fp_operator.__main__", "fp_operator.kube", "fraudpipeline.spec"} <= modules
    assert not any(m.startswith(("fp_serving", "fp_flink", "fp_devtools")) for m in modules)
    closure = import_closure("fp_operator.__main__")
    assert {"fp_operator.cli", "fp_operator.handlers", "fp_operator.reconciler", "fraudpipeline.spec"} <= closure
    assert NOT_PRODUCT.search("fp_devtools.bench.operator_harness") and NOT_PRODUCT.search("fp_serving.benchmark")
    assert not NOT_PRODUCT.search("fp_operator.builders") and not NOT_PRODUCT.search("fraudpipeline.features")
