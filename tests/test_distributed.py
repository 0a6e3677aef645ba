"""Data-parallel training with torch.distributed: two local processes (gloo, launched with torchrun) encode
one image; the file decodes, and its quality matches a single-process encode within noise."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import shc

EXAMPLE = Path(__file__).parents[1] / "examples" / "kodim23.png"
ARGS = ["--preset", "fast", "--steps", "160", "--json", "--force"]


@pytest.fixture(scope="module")
def crop(tmp_path_factory) -> Path:
    """A 256 x 192 crop: larger than one 16k-pixel batch, so the two processes draw different pixels."""
    path = tmp_path_factory.mktemp("dist") / "crop.png"
    with Image.open(EXAMPLE) as image:
        image.crop((300, 100, 556, 292)).save(path)
    return path


def _encode(command: list[str], output: Path) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    reports = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
    assert len(reports) == 1, done.stdout  # only process 0 reports
    assert reports[0]["bytes"] == output.stat().st_size
    return reports[0]


def test_two_processes_train_one_image(crop, tmp_path):
    single_out, dist_out = tmp_path / "single.shc", tmp_path / "dist.shc"
    single = _encode([sys.executable, "-m", "shc.cli.main", "encode", str(crop), "-o", str(single_out), *ARGS],
                     single_out)
    dist = _encode([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                    "-m", "shc.cli.main", "encode", str(crop), "-o", str(dist_out), *ARGS], dist_out)
    decoded = np.asarray(shc.decode(dist_out.read_bytes()))
    assert decoded.shape == (192, 256, 3)
    assert dist_out.read_bytes() != single_out.read_bytes()  # the processes really drew their own batches
    assert abs(dist["psnr_db"] - single["psnr_db"]) < 1.0
    assert abs(dist["bpp"] / single["bpp"] - 1) < 0.25
