"""Decoding needs no torch: ``shc decode`` and ``shc info`` work where torch cannot be imported, and ``shc encode``
(and ``shc.encode``) there fail with one line that names the ``shc[encode]`` extra.

Without building a venv (slow, and it needs the network): each check is a subprocess of this interpreter that
either finds a stand-in ``torch`` package first on ``PYTHONPATH`` whose import raises ImportError (any torch
import on the decode path would crash it), or runs with ``sys.modules["torch"] = None``, which is what an
environment without torch looks like to ``importlib`` (no spec at all). CI also decodes from a real
torch-free venv (``scripts/check_decode_only.sh``, run by ``.ci/run``).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "parrot_128x96_q3.shc"
GOLDEN_PNG = DATA / "parrot_128x96_q3.decoded.png"
SMALL_PNG = DATA / "parrot_64x48.png"
HINT = 'pip install "shc[encode]"'


@pytest.fixture(scope="module")
def fake_torch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder holding a ``torch`` package whose import fails, as an absent torch's would."""
    root = tmp_path_factory.mktemp("fake-torch")
    (root / "torch").mkdir()
    (root / "torch" / "__init__.py").write_text('raise ImportError("No module named torch")\n')
    return root


def _run(fake_torch: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    path = os.pathsep.join(p for p in (str(fake_torch), os.environ.get("PYTHONPATH", "")) if p)
    env = dict(os.environ, PYTHONPATH=path, PYTHONNOUSERSITE="1")
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120, cwd=cwd, env=env)


def _shc(fake_torch: Path, cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return _run(fake_torch, cwd, "-m", "shc.cli.main", *args)


def test_the_stand_in_torch_really_fails(fake_torch: Path, tmp_path: Path) -> None:
    result = _run(fake_torch, tmp_path, "-c", "import torch")
    assert result.returncode != 0 and "No module named torch" in result.stderr


def test_decode_without_torch(fake_torch: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.png"
    result = _shc(fake_torch, tmp_path, "decode", str(GOLDEN), "-o", "out.png")
    assert result.returncode == 0, result.stderr
    assert out.is_file()
    expected = np.asarray(Image.open(GOLDEN_PNG).convert("RGB"))
    np.testing.assert_array_equal(np.asarray(Image.open(out).convert("RGB")), expected)


def test_decode_at_another_size_without_torch(fake_torch: Path, tmp_path: Path) -> None:
    result = _shc(fake_torch, tmp_path, "decode", str(GOLDEN), "--scale", "0.5", "-o", "half.png")
    assert result.returncode == 0, result.stderr
    assert Image.open(tmp_path / "half.png").size == (64, 48)


def test_info_without_torch(fake_torch: Path, tmp_path: Path) -> None:
    result = _shc(fake_torch, tmp_path, "info", "--json", str(GOLDEN))
    assert result.returncode == 0, result.stderr
    assert '"width": 128' in result.stdout and '"height": 96' in result.stdout


def test_library_decode_without_torch(fake_torch: Path, tmp_path: Path) -> None:
    code = f"import shc; print(shc.decode(open({str(GOLDEN)!r}, 'rb').read()).size)"
    result = _run(fake_torch, tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(128, 96)"


def test_start_up_imports_neither_torch_nor_plotting(tmp_path: Path) -> None:
    # With torch installed (as here) too: the CLI, the format package and shc itself must not import it.
    code = (
        "import sys, shc, shc.format, shc.cli.main\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'matplotlib', 'pillow_heif'))\n"
        "print(heavy)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def _assert_one_line_hint(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr  # no traceback
    assert lines[0].startswith("Error: encoding needs PyTorch") and HINT in lines[0]
    assert result.stdout == ""


def test_encode_with_a_torch_that_fails_to_import(fake_torch: Path, tmp_path: Path) -> None:
    result = _shc(fake_torch, tmp_path, "encode", str(SMALL_PNG), "-o", "x.shc", "--steps", "1")
    _assert_one_line_hint(result)
    assert not (tmp_path / "x.shc").exists()


NO_TORCH = "import sys; sys.modules['torch'] = None\nfrom shc.cli.main import main\nmain(sys.argv[1:])\n"


@pytest.mark.parametrize("device", ["cpu", "cuda"])
def test_encode_where_torch_is_not_installed(tmp_path: Path, device: str) -> None:
    # No torch at all: refused before the image is read or the device checked.
    args = ["encode", str(SMALL_PNG), "-o", "x.shc", "--steps", "1", "--device", device]
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    _assert_one_line_hint(result)
    assert not (tmp_path / "x.shc").exists()


def test_encode_usage_errors_still_come_first_without_torch(tmp_path: Path) -> None:
    (tmp_path / "x.shc").write_bytes(b"old")
    args = ["encode", str(SMALL_PNG), "-o", "x.shc"]
    result = subprocess.run([sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120,
                            cwd=tmp_path)
    assert result.returncode == 1 and "exists" in result.stderr


@pytest.mark.parametrize("torch_setup", ["fake", "absent"])
def test_library_encode_without_torch(fake_torch: Path, tmp_path: Path, torch_setup: str) -> None:
    code = (
        ("import sys; sys.modules['torch'] = None\n" if torch_setup == "absent" else "")
        + "import numpy as np, shc\n"
        + "try:\n"
        + "    shc.encode(np.zeros((8, 8, 3), np.uint8), steps=1)\n"
        + "except ImportError as error:\n"
        + "    print(type(error).__name__, error)\n"
    )
    result = _run(fake_torch, tmp_path, "-c", code)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("TorchMissingError encoding needs PyTorch") and HINT in result.stdout


def test_torch_is_an_extra_not_a_base_dependency() -> None:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [req.split(";")[0].split("[")[0].split("=")[0].split(">")[0].split("<")[0].strip().lower()
             for req in project["dependencies"]]
    assert "torch" not in names
    assert {"numpy", "constriction", "pillow", "click"} <= set(names)
    extras = project["optional-dependencies"]
    assert any(req.startswith("torch") for req in extras["encode"])
    assert any(req.startswith("torch") for req in extras["dev"])  # scripts/setup.sh installs .[dev]: everything
