"""CUDA checks: run on a GPU machine (scripts/gpu_check.sh); skipped where CUDA is unavailable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from shc.codec.encoder import encode_image
from shc.format.decoder import decode_bytes
from shc.images import load_rgb
from shc.metrics import psnr_db

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")

DATA = Path(__file__).parent / "data"


def test_gpu_encoded_file_decodes_on_cpu_like_the_encoder_says():
    rgb = load_rgb(DATA / "parrot_128x96.png")
    result = encode_image(rgb, preset="fast", quality=4, steps=200, device="cuda", seed=0)
    decoded = decode_bytes(result.data)  # numpy decoder, CPU, tables from the file's integers
    assert psnr_db(decoded, rgb) == pytest.approx(result.psnr_db)
    assert abs(result.training.best.psnr_db - result.psnr_db) < 0.1
    assert result.psnr_db > 24.0


def test_gpu_and_cpu_forward_agree():
    from shc.codec.encoder import make_header
    from shc.codec.model import GridINR, PixelGrid
    from shc.codec.presets import settings_for

    header = make_header(64, 48, settings_for("fast", 3))
    torch.manual_seed(0)
    model = GridINR(header)
    with torch.no_grad():
        model.latents.copy_(torch.randint(-5, 6, model.latents.shape).float())
    _, coords_cpu = PixelGrid(header, 64, 48).coords()
    _, coords_gpu = PixelGrid(header, 64, 48, device="cuda").coords()
    with torch.no_grad():
        cpu = model(model.latents, coords_cpu).numpy()
        gpu = model.cuda()(model.latents, coords_gpu).cpu().numpy()
    np.testing.assert_allclose(gpu, cpu, atol=1e-4)
