"""Helpers of the paper-claim benchmarks: super-resolution (shc.bench.superres) and the Instant-NGP
comparison (shc.bench.ngp_large)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from shc.bench.ngp_large import interpolate_bytes
from shc.bench.superres import half_size, parse_overrides, upscale


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
