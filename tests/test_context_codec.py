"""The context model's encoder side (shc.codec.context) against the normative integer network and tables
(shc.format.context): the rate it trains on is the rate the file pays, and adopting it never loses data."""

from __future__ import annotations

import copy
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from shc.codec.context import ContextModel, laplace_bits
from shc.codec.encoder import decoded_psnr, encode_image, make_header
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import settings_for
from shc.codec.prior import FactorizedPrior
from shc.codec.tables import adopt_context, assemble_file, code_latents, with_context_width
from shc.codec.train import train
from shc.format import context as ctx
from shc.format.container import read_file
from shc.format.entropy import file_latents
from shc.images import load_rgb

DATA = Path(__file__).parent / "data"


def _sparse_latents(layout, rng: np.random.Generator) -> np.ndarray:
    """Integer latents like trained ones: mostly 0, clustered +-1, +-2 where a smooth random field is large."""
    values = np.zeros((layout.total_rows, 1))
    for level in layout.levels:
        field = rng.normal(size=(level.rows,))
        values[level.rows_slice, 0] = np.round(field * rng.uniform(0.3, 1.2))
    return values


def _context_header(width=96, height=64, **overrides):
    settings = dataclasses.replace(settings_for("fast", 3), **overrides)
    return with_context_width(make_header(width, height, settings), 8)


def _integer_rate(params, layout, latents: np.ndarray) -> float:
    levels = layout.split(latents.astype(np.int64))
    total = 0.0
    for slot, level in enumerate(layout.context_levels):
        total += ctx.context_level_bits(params, slot, layout.levels, level.index, levels[level.index][:, 0],
                                        ctx.coarser_latents(levels, level.index))
    return total


def test_laplace_bits_match_the_integer_tables():
    """The training rate of an integer residual is the table's cost up to the table's quantization (and
    up to its truncation to the level's span, which only lowers the table's cost)."""
    for bucket in (8, 24, 40, 48):  # scales 1/8 .. 4, a span that holds all but a negligible tail
        span = 40
        counts = ctx.context_counts(bucket, span).astype(np.float64)
        table_bits = ctx.C.TABLE_PRECISION - np.log2(counts)
        residual = torch.arange(-(span - 1), span, dtype=torch.float64)
        log2_scale = torch.full_like(residual, ctx.SCALE_MIN_LOG2 + bucket / 8)
        torch_bits = laplace_bits(residual, log2_scale).numpy()
        fitted = table_bits < 9  # counts of 64 or more: far from the floor of 1 every count has
        assert fitted.sum() >= 3
        np.testing.assert_allclose(torch_bits[fitted], table_bits[fitted], atol=0.02)


@pytest.mark.parametrize("overrides", [{}, {"log2_hashmap_size": 8}])  # all dense; fine levels hashed
def test_fitted_rate_is_what_the_file_pays(overrides):
    """The float model with fixed-point weights rates the latents as the integer network and its tables code
    them (the centre is the same integer almost everywhere; scales differ only by the 1/8-octave buckets),
    and fitting lowers that rate."""
    header = _context_header(**overrides)
    layout = header.layout
    assert layout.context_levels
    latents = _sparse_latents(layout, np.random.default_rng(3))
    torch.manual_seed(0)
    model = ContextModel(layout, 8)
    q = torch.from_numpy(latents).float()
    before = float(model.bits(q).detach())
    fitted = model.fit(q, 150)
    assert fitted < 0.97 * before
    params = model.integer_params(layout.split(latents.astype(np.int64)), layout)
    paid = _integer_rate(params, layout, latents)
    assert abs(paid - fitted) <= 0.03 * fitted + 64


def test_adopt_context_keeps_the_smaller_file_and_the_same_pixels():
    rgb = load_rgb(DATA / "parrot_128x96.png")
    height, width, _ = rgb.shape
    settings = dataclasses.replace(settings_for("fast", 5), steps=300, eval_every=100)
    header = make_header(width, height, settings)
    torch.manual_seed(0)
    model, prior, grid = GridINR(header), FactorizedPrior(header.config.num_tables), PixelGrid(header, width, height)
    train(model, prior, grid, torch.from_numpy(rgb.reshape(-1, 3).copy()), settings)
    plain = assemble_file(model).data
    adopted = copy.deepcopy(model)
    kept = adopt_context(adopted, 8, 200)
    data = assemble_file(adopted).data
    parsed = read_file(data)
    assert (parsed.header.config.context_width == 8) == kept and (parsed.context is not None) == kept
    assert len(data) <= len(plain) if kept else data == plain
    np.testing.assert_array_equal(np.concatenate(file_latents(parsed)), code_latents(model).latents)
    assert decoded_psnr(data, rgb) == decoded_psnr(plain, rgb)


def test_encoder_writes_a_decodable_context_file():
    result = encode_image(DATA / "parrot_128x96.png", preset="fast", quality=6, steps=200)
    parsed = read_file(result.data)
    assert parsed.header.config.context_width in (0, 8)
    assert decoded_psnr(result.data, load_rgb(DATA / "parrot_128x96.png"))[0] == pytest.approx(result.psnr_db)
