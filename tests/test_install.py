"""A plain (non-editable) install works: every subpackage and the fuzzer's seed files (package data) land in
the install, and nothing in the repository root shadows it.

The install is ``pip install --no-deps --no-build-isolation --no-index`` (no network; the build backend is
the venv's own setuptools) of a fresh copy of the files the build reads, into a ``--target`` folder: building
from a copy keeps pip's ``build/`` folder out of the checkout, where a stale one could put deleted modules
into the wheel. It takes a few seconds.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _source_copy(dest: Path) -> Path:
    """pyproject.toml, the readme and every folder that ``[tool.setuptools.package-dir]`` maps, copied."""
    project = PYPROJECT["project"]
    dest.mkdir()
    for name in ("pyproject.toml", project["readme"]):
        shutil.copy2(REPO / name, dest / name)
    folders = {Path(folder).parts[0] for folder in PYPROJECT["tool"]["setuptools"]["package-dir"].values()}
    for folder in sorted(folders):
        shutil.copytree(REPO / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    return dest


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("setuptools", reason="the no-network build uses the venv's setuptools (build-system.requires)")
    root = tmp_path_factory.mktemp("install")
    source = _source_copy(root / "source")
    target = root / "site"
    command = [sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index"]
    command += ["--no-cache-dir", "--disable-pip-version-check", "--quiet", "--target", str(target), str(source)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    return target


def _run(installed: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(installed), PYTHONNOUSERSITE="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


IMPORT_CHECK = """\
import importlib.metadata, shc, shc.format, shc.tools.fuzz
print(shc.__version__)
for module in (shc, shc.format, shc.tools.fuzz):
    print(module.__file__)
print(shc.tools.fuzz.SEEDS_DIR)
print(importlib.metadata.distribution("shc").locate_file(""))
"""


def test_plain_install_imports_from_the_install_not_the_checkout(installed: Path) -> None:
    result = _run(installed, REPO, "-c", IMPORT_CHECK)  # from the repository root: no root folder shadows it
    assert result.returncode == 0, result.stderr
    version, *files, seeds_dir, _ = result.stdout.splitlines()
    assert version == PYPROJECT["project"]["version"]
    for path in [*files, seeds_dir]:
        assert Path(path).resolve().is_relative_to(installed.resolve()), f"{path} is not from {installed}"
    shipped = sorted(path.name for path in (REPO / "tools" / "seeds").glob("*.shc"))
    assert shipped and sorted(path.name for path in Path(seeds_dir).glob("*.shc")) == shipped


def test_plain_install_holds_no_study(installed: Path) -> None:
    """The studies (studies/NAME/run.py) run against the package from beside it: none is installed (they
    were modules of shc.bench)."""
    studies = {path.parent.name for path in (REPO / "studies").glob("*/run.py")}
    bench = {path.stem for path in (installed / "shc" / "bench").glob("*.py")}
    assert studies and "runner" in bench and not studies & bench
    assert not (installed / "studies").exists()


def test_plain_install_version_comes_from_its_own_metadata(installed: Path, tmp_path: Path) -> None:
    # From elsewhere, so that sys.path[0] (the working directory) holds no shc.egg-info: from the
    # repository root, importlib.metadata finds the editable install's ./shc.egg-info first.
    result = _run(installed, tmp_path, "-c", IMPORT_CHECK)
    assert result.returncode == 0, result.stderr
    version, *_, metadata_dir = result.stdout.splitlines()
    assert version == PYPROJECT["project"]["version"]
    assert Path(metadata_dir).resolve() == installed.resolve()


def test_plain_install_fuzzer_finds_its_seed_files(installed: Path) -> None:
    result = _run(installed, REPO, "-m", "shc.tools.fuzz", "--cases", "3", "--no-synthetic")
    assert result.returncode == 0, result.stdout + result.stderr
    num_seeds = len(list((REPO / "tools" / "seeds").glob("*.shc")))
    assert num_seeds > 0
    assert f"({num_seeds} seeds, --seed 0)" in result.stdout
    assert f"seeds decoded unmutated:       {num_seeds}/{num_seeds}" in result.stdout


REQUIRES_CHECK = """\
import importlib.metadata
for requirement in importlib.metadata.requires("shc"):
    print(requirement)
"""


def test_plain_install_needs_torch_only_for_the_encode_extra(installed: Path, tmp_path: Path) -> None:
    # The built metadata, as pip sees it: `pip install shc` is decode-only (no ~1 GB torch), `shc[encode]` encodes.
    result = _run(installed, tmp_path, "-c", REQUIRES_CHECK)
    assert result.returncode == 0, result.stderr
    torch_lines = [line for line in result.stdout.splitlines() if line.replace(" ", "").startswith("torch")]
    assert torch_lines, result.stdout
    base = [line for line in torch_lines if "extra" not in line]
    assert not base, f"torch is a base dependency: {base}"
    assert any('extra == "encode"' in line for line in torch_lines), torch_lines
