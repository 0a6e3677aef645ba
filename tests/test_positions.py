"""Trainer and decoder put every pixel at the same place, at any output size (SPEC §7 step 3).

Both take vertices and weights from :func:`shc.format.grid.axis_taps`; these tests check, on sizes far
larger and odder than the encoder tests use, that the PyTorch blend and the numpy decoder's blend give
bit-identical features for the same feature table, and that the whole forward passes agree on the 8-bit
pixels (the MLP's matrix products may sum in a different order, which SPEC §7 allows).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from shc.codec.encoder import make_header
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import settings_for
from shc.codec.tables import assemble_file
from shc.format.constants import INTERPOLATION_BILINEAR, INTERPOLATION_BSPLINE
from shc.format.container import read_file
from shc.format.decoder import Synthesis, to_uint8
from shc.format.entropy import file_latents

NATIVE = (1000, 667)


@pytest.fixture(scope="module", params=[INTERPOLATION_BILINEAR, INTERPOLATION_BSPLINE], ids=["bilinear", "bspline"])
def coded_model(request):
    """A random model of a 1000 x 667 image (default quality-3 grid: dense and hashed levels), its file
    and the decoder built from that file, for each interpolation kernel."""
    torch.manual_seed(0)
    settings = dataclasses.replace(settings_for("default", 3), log2_hashmap_size=12, interpolation=request.param)
    header = make_header(*NATIVE, settings)
    model = GridINR(header)
    with torch.no_grad():
        model.latents.copy_(torch.randn_like(model.latents) * 3)
        for layer in model.mlp:
            layer.bias.uniform_(0.2, 0.4)
    assert any(not level.dense for level in model.layout.levels) and model.layout.levels[0].dense
    data = assemble_file(model).data
    parsed = read_file(data)
    latents = file_latents(parsed)
    return model, Synthesis(parsed, latents), torch.from_numpy(np.concatenate(latents).astype(np.float32))


def _sizes():
    width, height = NATIVE
    scaled = [(max(1, round(width * s)), max(1, round(height * s))) for s in (0.3, 0.75, 1.0, 1.7, 3.0)]
    return scaled + [(4000, 3000), (1, 4000), (4000, 1), (333, 1001)]


def _some(size: int, rng: np.random.Generator, count: int = 40) -> np.ndarray:
    return np.unique(np.concatenate([[0, size - 1], rng.integers(0, size, count)]))


def _pixel_sets(width: int, height: int):
    """Every column against some rows, and every row against some columns (each axis whole once, up to
    4,000 pixels), so every position of both axes is compared."""
    rng = np.random.default_rng(width * 7 + height)
    every_column = np.arange(width) if width <= 4000 else _some(width, rng, 2000)
    every_row = np.arange(height) if height <= 4000 else _some(height, rng, 2000)
    return [(every_column, _some(height, rng, 8)), (_some(width, rng, 8), every_row)]


@pytest.mark.parametrize("size", _sizes(), ids=lambda s: f"{s[0]}x{s[1]}")
@pytest.mark.parametrize("axis", [0, 1], ids=["all-columns", "all-rows"])
def test_torch_and_numpy_blend_identically_at_any_size(coded_model, size, axis) -> None:
    model, synthesis, q = coded_model
    width, height = size
    columns, rows = _pixel_sets(width, height)[axis]

    numpy_features = synthesis.tile_features(width, height, columns, rows)
    table = torch.from_numpy(np.concatenate(synthesis.feature_tables_t, axis=1).T.copy())
    _, coords = PixelGrid(model.header, width, height).coords(columns, rows)
    with torch.no_grad():
        torch_features = coords.sample(table).numpy().T
    np.testing.assert_array_equal(torch_features, numpy_features)

    with torch.no_grad():
        torch_rgb = model(q, coords, quantize_weights=True).numpy()
    numpy_rgb = synthesis.mlp(numpy_features).T
    np.testing.assert_allclose(numpy_rgb, torch_rgb, atol=1e-5, rtol=1e-5)
    torch_8bit, numpy_8bit = to_uint8(torch_rgb).astype(int), to_uint8(numpy_rgb).astype(int)
    assert np.abs(torch_8bit - numpy_8bit).max() <= 1
    assert np.mean(torch_8bit != numpy_8bit) < 1e-3
    assert numpy_8bit.std() > 2  # a non-trivial field


def test_a_batch_sees_the_pixels_the_full_image_sees(coded_model) -> None:
    """Positions depend only on (pixel, output size, cells): a random batch's features are the same numbers
    as those pixels' in the decoder's row tiles."""
    model, synthesis, _ = coded_model
    width, height = 333, 1001
    grid = PixelGrid(model.header, width, height)
    _, coords = grid.random_batch(4000, np.random.default_rng(1))
    table = torch.from_numpy(np.concatenate(synthesis.feature_tables_t, axis=1).T.copy())
    with torch.no_grad():
        batch = coords.sample(table).numpy()
    columns, rows = coords.columns, coords.rows
    full = synthesis.tile_features(width, height, np.arange(width), rows)  # whole rows, as render() tiles them
    np.testing.assert_array_equal(batch.T, full.reshape(full.shape[0], rows.size, width)[:, :, columns].reshape(full.shape[0], -1))
