"""The studies beside the package (``studies/NAME/run.py``): each loads against the installed package, and
takes what it shares with the others from :mod:`shc.bench`'s public names, not from its modules."""

from __future__ import annotations

import ast

import pytest
from conftest import STUDIES_DIR, load_study

import shc.bench

STUDIES = sorted(path.parent.name for path in STUDIES_DIR.glob("*/run.py"))


def test_the_studies_are_found() -> None:
    assert {"paper", "large", "throughput", "context_ablation"} <= set(STUDIES)


@pytest.mark.parametrize("name", STUDIES)
def test_a_study_loads_and_has_a_main(name: str) -> None:
    assert callable(load_study(name).main)


@pytest.mark.parametrize("name", STUDIES)
def test_a_study_imports_shc_bench_by_its_public_names(name: str) -> None:
    tree = ast.parse((STUDIES_DIR / name / "run.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == "shc.bench":
            assert {alias.name for alias in node.names} <= set(shc.bench.__all__), ast.unparse(node)
        modules = [alias.name for alias in node.names] if isinstance(node, ast.Import) else [
            node.module if isinstance(node, ast.ImportFrom) else None]
        assert not any(m and m.startswith("shc.bench.") for m in modules), ast.unparse(node)


def test_every_public_name_of_shc_bench_resolves() -> None:
    for name in shc.bench.__all__:
        assert getattr(shc.bench, name) is not None, name
