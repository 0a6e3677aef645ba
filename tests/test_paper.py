"""The paper's way of counting (studies/paper): histogram bits and the step of lowest training MSE."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from conftest import load_study

paper = load_study("paper")
FLOAT32_BITS, PaperCount, histogram_bits = paper.FLOAT32_BITS, paper.PaperCount, paper.histogram_bits
paper_main = paper.main

DATA = Path(__file__).parent / "data"


def test_histogram_bits_is_count_times_empirical_entropy():
    assert histogram_bits(np.array([0, 0, 1, 1])) == pytest.approx(4.0)
    assert histogram_bits(np.array([5, 5, 5])) == 0.0
    values = np.array([-1, 0, 0, 0, 2, 2, 7, 7])
    p = np.array([1, 3, 2, 2]) / 8
    assert histogram_bits(values) == pytest.approx(-8 * float((p * np.log2(p)).sum()))


@pytest.mark.slow
def test_paper_bench_reports_both_counts(tmp_path):
    """A short run of the paper preset on a small photo: the file is written and decodes to the reported PSNR,
    the reference count sits at the step of lowest training MSE, and its bits are histogram + float32 weights."""
    from shc.format.decoder import decode_bytes
    from shc.images import load_rgb
    from shc.metrics import psnr_db

    image = DATA / "parrot_64x48.png"
    assert paper_main([str(image), "--steps", "30", "--threads", "1", "-o", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "parrot_64x48_paper.json").read_text())
    data = (tmp_path / "parrot_64x48_paper.shc").read_bytes()
    assert report["shc"]["bytes"] == len(data)
    assert report["shc"]["psnr_db"] == pytest.approx(psnr_db(decode_bytes(data), load_rgb(image)), abs=1e-6)
    count = report["paper_count"]
    logged = {row["step"]: row["train_mse"] for row in report["paper_curve"]}
    assert all(count["train_mse"] <= mse for mse in logged.values())
    assert count["bits"] == pytest.approx(count["latent_bits_one_histogram"] + count["weight_bits_float32"])
    assert count["weight_bits_float32"] % FLOAT32_BITS == 0 and count["weight_bits_float32"] > 0
    assert count["train_psnr_db"] == pytest.approx(10 * math.log10(1 / count["train_mse"]), abs=1e-9)


def test_paper_count_keeps_lowest_mse_step():
    import torch

    class Layout:
        levels = []

    class Model:
        layout = Layout()
        latents = torch.tensor([[0.2], [1.7], [-1.2]])

        def network_parameters(self):
            return [torch.zeros(3, 2)]

    counter = PaperCount(log_every=2)
    for step, mse in enumerate([0.5, 0.2, 0.3, 0.1, 0.4], start=1):
        counter(step, torch.tensor(mse), Model())
    assert counter.best["step"] == 4 and counter.best["train_mse"] == pytest.approx(0.1)
    assert [row["step"] for row in counter.curve] == [2, 4]
    assert counter.best["latent_bits_one_histogram"] == pytest.approx(histogram_bits(np.array([0, 2, -1])))
    assert counter.best["weight_bits_float32"] == 6 * 32
