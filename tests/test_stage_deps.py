"""Every project file a stage's flow imports (transitively) is covered by that stage's dvc.yaml deps.

A dep that is missing means ``dvc repro`` would not rerun the stage after its code changed.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml

PROJECT = Path(__file__).resolve().parent.parent


def module_file(name: str) -> Path | None:
    """The project file of a dotted module name (``tasks.common.params``), or None if not ours."""
    if name.split(".")[0] not in {"tasks", "flows"}:
        return None
    base = PROJECT.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def imported_files(path: Path) -> set[Path]:
    """Project files imported by ``path`` and by what those import, packages' __init__ included."""
    seen: set[Path] = set()
    todo = [path]
    while todo:
        file = todo.pop()
        if file in seen:
            continue
        seen.add(file)
        names: list[str] = []
        for node in ast.walk(ast.parse(file.read_text(), str(file))):
            if isinstance(node, ast.Import):
                names += [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.append(node.module)
                names += [f"{node.module}.{a.name}" for a in node.names]  # `from pkg import module`
        for name in names:
            parts = name.split(".")
            for i in range(1, len(parts) + 1):  # importing a.b.c runs a/__init__ and a/b/__init__
                found = module_file(".".join(parts[:i]))
                if found is not None:
                    todo.append(found)
    return seen


STAGES = yaml.safe_load((PROJECT / "dvc.yaml").read_text())["stages"]


def test_imported_files_follows_from_imports_and_packages():
    files = {p.relative_to(PROJECT).as_posix() for p in imported_files(PROJECT / "flows" / "promote.py")}
    assert {"flows/__init__.py", "tasks/common/params.py", "tasks/evaluate/registry.py",
            "tasks/lm/generate.py"} <= files


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_deps_cover_every_imported_project_file(stage):
    spec = STAGES[stage]
    module = spec["cmd"].split("python -m ", 1)[1].split()[0]
    deps = [str(d).rstrip("/") for d in spec.get("deps", [])]
    missing = []
    for file in sorted(imported_files(module_file(module))):
        rel = file.relative_to(PROJECT).as_posix()
        if not any(rel == d or rel.startswith(d + "/") for d in deps):
            missing.append(rel)
    assert not missing, f"dvc.yaml stage {stage!r} imports files not in its deps: {missing}"


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_stage_code_deps_are_only_what_it_imports(stage):
    """A code dep the flow does not import would rerun the stage for nothing."""
    spec = STAGES[stage]
    module = spec["cmd"].split("python -m ", 1)[1].split()[0]
    files = [f.relative_to(PROJECT).as_posix() for f in imported_files(module_file(module))]
    code_deps = [str(d).rstrip("/") for d in spec.get("deps", []) if str(d).startswith(("flows/", "tasks/"))]
    unused = [d for d in code_deps if not any(f == d or f.startswith(d + "/") for f in files)]
    assert not unused, f"dvc.yaml stage {stage!r} lists code deps it never imports: {unused}"
