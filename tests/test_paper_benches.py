"""Helpers of the paper-claim studies: super-resolution (studies/superres), the Instant-NGP comparison
(studies/ngp_large) and the ablation table (studies/ablation); the encoder overrides they share come from
shc.bench."""

from __future__ import annotations

import math

import numpy as np
import pytest
from conftest import load_study

from shc.bench import parse_overrides

interpolate_bytes = load_study("ngp_large").interpolate_bytes
half_size, upscale = load_study("superres").half_size, load_study("superres").upscale


def test_half_size_is_the_rounded_two_by_two_box_average():
    rgb = np.arange(4 * 6 * 3, dtype=np.uint8).reshape(4, 6, 3)
    half = half_size(rgb)
    assert half.shape == (2, 3, 3)
    expected = np.round(rgb.astype(float).reshape(2, 2, 3, 2, 3).mean(axis=(1, 3)))
    assert np.array_equal(half, expected.astype(np.uint8))
    assert half_size(np.zeros((5, 7, 3), np.uint8)).shape == (2, 3, 3)  # odd last row and column dropped


def test_upscale_of_a_constant_image_is_constant():
    flat = np.full((8, 8, 3), 77, np.uint8)
    for method in ("bilinear", "bicubic", "lanczos"):
        assert np.all(upscale(flat, (16, 16), method) == 77)


def test_parse_overrides_reads_json_values():
    assert parse_overrides(["subpixels=3", "anneal=0.9", "name=abc"]) == {"subpixels": 3, "anneal": 0.9, "name": "abc"}


def test_interpolate_bytes_is_log_linear_between_neighbours_and_none_outside():
    curve = [{"psnr_db": 30.0, "bytes": 1000}, {"psnr_db": 34.0, "bytes": 4000}, {"psnr_db": 32.0, "bytes": 2000}]
    assert interpolate_bytes(curve, 32.0) == pytest.approx(2000)
    assert interpolate_bytes(curve, 31.0) == pytest.approx(math.sqrt(1000 * 2000))
    assert interpolate_bytes(curve, 29.9) is None and interpolate_bytes(curve, 34.1) is None


@pytest.mark.slow
@pytest.mark.parametrize(("subpixels", "mode"), [(3, "jitter"), (2, "box")])
def test_area_training_modes_encode_a_photo_that_decodes_above_a_floor(subpixels, mode):
    """Training at sub-pixel positions (jitter) or on box means of sub-pixel samples still fits the photo:
    the file decodes (at native size and 2x) and its native PSNR clears a floor."""
    import dataclasses
    from pathlib import Path

    from shc.codec.encoder import encode_image
    from shc.codec.presets import settings_for
    from shc.format.decoder import decode_bytes
    from shc.images import load_rgb
    from shc.metrics import psnr_db

    rgb = load_rgb(Path(__file__).parent / "data" / "parrot_64x48.png")
    settings = dataclasses.replace(settings_for("fast", 5, 200), subpixels=subpixels, subpixel_mode=mode)
    result = encode_image(rgb, settings=settings)
    assert psnr_db(decode_bytes(result.data), rgb) == pytest.approx(result.psnr_db, abs=1e-6)
    assert result.psnr_db > 22.0
    assert decode_bytes(result.data, scale=2).shape == (96, 128, 3)
    with pytest.raises(ValueError, match="subpixel_mode"):
        encode_image(rgb, settings=dataclasses.replace(settings, subpixel_mode="gauss"))


def test_ablation_variants_and_table():
    ablation = load_study("ablation")
    parse_variant, rd_cost, table = ablation.parse_variant, ablation.rd_cost, ablation.table

    assert parse_variant("anneal_0.5:anneal=0.5,noise=0.25") == ("anneal_0.5", {"anneal": 0.5, "noise": 0.25})
    base = {"image": "a", "quality": 3.0, "variant": "preset", "bytes": 1000, "bpp": 0.1, "psnr_db": 30.0,
            "lmbda": 0.01}
    better = {**base, "variant": "v", "bytes": 900, "bpp": 0.09, "psnr_db": 30.5}
    assert rd_cost(base) == pytest.approx(1e-3 + 1e-3)
    text = table([base, better])
    assert "-10.0 %" in text and "+0.50" in text and "RD cost lower on 1 of 1" in text
