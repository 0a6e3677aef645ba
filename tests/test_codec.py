"""The PyTorch model (training) against the normative numpy decoder, and small end-to-end encodes."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from shc.codec.encoder import encode_image, make_header
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import (
    DEFAULT_QUALITY, PRESETS, QUALITIES, level_cells, preset_named, quality_level, settings_for,
)
from shc.codec.prior import FactorizedPrior
from shc.codec.quantize import hard_round, soft_round_gumbel, temperature
from shc.codec.tables import build_tables, integer_latents, table_bits
from shc.format.container import read_file
from shc.format.decoder import Synthesis, decode_bytes
from shc.format.entropy import decode_latents, encode_latents
from shc.format.grid import corner_indices_weights
from shc.format.header import ModelConfig
from shc.images import load_rgb
from shc.metrics import psnr_db

DATA = Path(__file__).parent / "data"


def _random_model(width: int, height: int, channels: int = 3, **overrides) -> GridINR:
    settings = dataclasses.replace(settings_for("fast", 3), **overrides)
    torch.manual_seed(1)
    model = GridINR(make_header(width, height, settings, channels))
    with torch.no_grad():  # integer latents spread over several symbols, as after training
        model.latents.copy_(torch.randint(-6, 7, model.latents.shape).float())
        for p in model.network_parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize(
    ("width", "height", "overrides"),
    [
        (40, 30, {}),
        (33, 57, {"log2_hashmap_size": 6, "num_levels": 5}),  # hashed levels, odd sizes, portrait
        (24, 16, {"latent_dim": 2, "feat_dim": 3, "mlp_width": 8, "mlp_depth": 1, "num_groups": 2}),
        (21, 13, {"channels": 4, "log2_hashmap_size": 6}),  # RGBA: four outputs (format version 5)
    ],
)
def test_torch_forward_matches_numpy_decoder(width, height, overrides):
    model = _random_model(width, height, **overrides)
    header = model.header
    q = integer_latents(model)
    pixels, coords = PixelGrid(header, width, height).coords()
    with torch.no_grad():
        torch_rgb = model(torch.from_numpy(q).float(), coords, quantize_weights=True).numpy()

    weights = model.quantized_weights()
    tables, q = build_tables(model, q)
    levels = model.layout.split(q)
    from shc.format.container import write_file

    data = write_file(header, weights, tables, encode_latents(header, tables, levels))
    parsed = read_file(data)
    decoded_levels = decode_latents(parsed.header, parsed.tables, parsed.latent_segments)
    for a, b in zip(levels, decoded_levels):
        np.testing.assert_array_equal(a, b)
    synthesis = Synthesis(parsed, decoded_levels)
    columns, rows = np.tile(np.arange(width), height), np.repeat(np.arange(height), width)
    numpy_rgb = synthesis.mlp(synthesis.features(width, height, columns, rows)).T
    # the separable tile path used by render() computes bit-identical features to the per-point path
    separable = synthesis.tile_features(width, height, np.arange(width), np.arange(height))
    np.testing.assert_array_equal(separable, synthesis.features(width, height, columns, rows))
    # and the training blend (torch, separable, the same float32 weights) computes the very same numbers
    with torch.no_grad():
        table = torch.from_numpy(np.concatenate(synthesis.feature_tables_t, axis=1).T.copy())
        torch_feats = coords.sample(table).numpy()
    np.testing.assert_array_equal(torch_feats.T, separable)
    assert np.abs(numpy_rgb).max() > 0.05  # a non-trivial field
    np.testing.assert_allclose(numpy_rgb, torch_rgb, atol=2e-5, rtol=1e-5)
    # and the 8-bit outputs agree except where a value sits on a rounding boundary
    channels = header.config.channels
    assert torch_rgb.shape == numpy_rgb.shape == (width * height, channels)
    rendered = synthesis.render(width, height).reshape(-1, channels).astype(int)
    expected = np.rint(np.clip(torch_rgb, 0, 1) * 255).astype(int)
    assert np.mean(rendered != expected) < 1e-3
    assert np.abs(rendered - expected).max() <= 1


def test_strips_and_random_batches_are_pieces_of_the_full_forward():
    model = _random_model(30, 20, log2_hashmap_size=6, num_levels=5)  # hashed levels included
    grid = PixelGrid(model.header, 30, 20)
    q = torch.from_numpy(integer_latents(model)).float()
    with torch.no_grad():
        pixels, full = grid.coords()
        whole = model(q, full)
        strips = list(grid.strips(max_pixels=70))  # 2 rows each, the last one shorter
        assert [c.num_pixels for _, c in strips] == [60] * 10
        assembled = torch.cat([model(q, coords) for _, coords in strips])
        torch.testing.assert_close(assembled, whole)
        rng = np.random.default_rng(3)
        for batch in (150, 37, 1, 10_000):
            idx, coords = grid.random_batch(batch, rng)
            assert idx.unique().numel() == idx.numel() == coords.num_pixels
            assert abs(coords.num_pixels - min(batch, 600)) <= 0.3 * min(batch, 600) + 30
            torch.testing.assert_close(model(q, coords), whole[idx])
    assert torch.equal(pixels, torch.arange(600))


def test_scoring_sample_of_large_images_and_its_strips():
    """Large images are scored on a fixed, evenly spread product subset; its strips are pieces of it."""
    model = _random_model(30, 20, log2_hashmap_size=6, num_levels=5)
    grid = PixelGrid(model.header, 30, 20)
    assert grid.scoring_sample(600) is None  # small enough: scored whole
    columns, rows = grid.scoring_sample(150)
    assert abs(columns.size * rows.size - 150) <= 20
    assert columns[0] == 0 and columns[-1] == 29 and rows[0] == 0 and rows[-1] == 19
    assert np.all(np.diff(columns) > 0) and np.all(np.diff(rows) > 0)
    q = torch.from_numpy(integer_latents(model)).float()
    with torch.no_grad():
        _, sampled = grid.coords(columns, rows)
        pieces = [(idx, coords) for idx, coords in grid.strips(max_pixels=40, sample=(columns, rows))]
        assert sum(c.num_pixels for _, c in pieces) == columns.size * rows.size
        torch.testing.assert_close(torch.cat([model(q, c) for _, c in pieces]), model(q, sampled))
        expected = (rows[:, None] * 30 + columns[None, :]).reshape(-1)
        assert torch.equal(torch.cat([idx for idx, _ in pieces]), torch.from_numpy(expected))


def test_separable_blend_gradient_matches_dense_reference():
    """The gradient reaching the latents through the separable blend equals that of an explicit blend matrix
    built from the normative 4-corner geometry (hashed levels, a random product batch)."""
    model = _random_model(12, 9, log2_hashmap_size=5, num_levels=3)
    header = model.header
    columns, rows = np.array([0, 3, 4, 10]), np.array([1, 2, 8])
    _, coords = PixelGrid(header, 12, 9).coords(columns, rows)
    q = model.latents.detach().clone().requires_grad_(True)
    model(q, coords).square().sum().backward()

    xs, ys = np.tile(columns, rows.size), np.repeat(rows, columns.size)
    num_rows = sum(header.level_rows())
    dense = torch.zeros(xs.size, header.config.num_levels, num_rows)
    for level in model.layout.levels:
        idx, w = corner_indices_weights(xs, ys, 12, 9, level.nx, level.ny, header.config.log2_hashmap_size,
                                        header.config.interpolation)
        for corner in range(idx.shape[1]):
            dense[np.arange(xs.size), level.index, level.offset + idx[:, corner]] += torch.from_numpy(w[:, corner])
    q_ref = model.latents.detach().clone().requires_grad_(True)
    table = torch.nn.functional.linear(q_ref, model.latent_decoder.weight, model.latent_decoder.bias)
    h = (dense @ table).view(xs.size, -1)
    for k, layer in enumerate(model.mlp):
        h = layer(h)
        if k < len(model.mlp) - 1:
            h = torch.relu(h)
    h.square().sum().backward()
    assert q_ref.grad.abs().sum() > 0
    torch.testing.assert_close(q.grad, q_ref.grad, atol=1e-5, rtol=1e-4)


def test_weight_quantization_is_symmetric_int8_and_exact_on_both_sides():
    from shc.codec.model import dequantize, quantize_tensor

    p = torch.tensor([[0.5, -0.25], [0.001, -1.27]])
    q, scale = quantize_tensor(p)
    assert float(scale) == pytest.approx(1.27 / 127)
    assert q.abs().max() == 127 and q.dtype == torch.float32
    assert torch.all(torch.abs(dequantize(q, scale) - p) <= scale / 2 + 1e-7)
    zero_q, zero_scale = quantize_tensor(torch.zeros(3))
    assert float(zero_scale) == 0.0 and torch.all(zero_q == 0)
    # numpy's float32 product is the same number as torch's
    flat = (q.numpy().astype(np.int8).astype(np.float32) * np.float32(scale)).reshape(p.shape)
    np.testing.assert_array_equal(flat, dequantize(q, scale).numpy())


def test_quantizers():
    x = torch.tensor([-2.7, -0.2, 0.4, 1.9, 3.2], requires_grad=True)
    y = hard_round(x)
    assert y.tolist() == [-3.0, 0.0, 0.0, 2.0, 3.0]
    y.sum().backward()
    assert x.grad.tolist() == [1.0] * 5  # straight-through
    torch.manual_seed(0)
    soft = soft_round_gumbel(x.detach().repeat(2000, 1), tau=0.01)
    # at low temperature the relaxed sample is (almost always) the nearest integer
    assert torch.mean((torch.abs(soft - torch.round(x.detach())) < 0.01).float()) > 0.97
    hot = soft_round_gumbel(torch.full((4000,), 0.3), tau=0.5)
    assert 0.0 <= hot.min() and hot.max() <= 1.0 and 0.15 < hot.mean() < 0.5  # stochastic, biased to 0
    assert temperature(0.0) == pytest.approx(0.5) and temperature(1.0) == pytest.approx(0.05)


def test_prior_pmf_is_a_distribution_and_cdf_monotone():
    prior = FactorizedPrior(2)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.5 * torch.randn_like(p))
    x = torch.linspace(-30, 30, 601).repeat(2, 1)
    logits = prior.logits_cdf(x, slice(0, 2))
    assert torch.all(logits[:, 1:] >= logits[:, :-1] - 1e-5)
    pmf = prior.pmf(1, -200, 200)
    assert np.all(pmf >= 0) and abs(pmf.sum() - 1.0) < 1e-3


def test_tabulated_rate_matches_the_exact_prior():
    """The training rate (self-information interpolated on a 1/8 grid) equals the CDF-MLP rate exactly on
    integers and closely in between, with matching gradients for the latents and the prior."""
    torch.manual_seed(0)
    prior = FactorizedPrior(3)
    with torch.no_grad():
        for p in prior.parameters():
            p.add_(0.3 * torch.randn_like(p))
    channels = torch.randint(0, 3, (5000, 1))
    for values in (torch.randint(-9, 10, (5000, 1)).float(), 3 * torch.randn(5000, 1)):
        x_tab = values.clone().requires_grad_(True)
        tab = prior.tabulated_bits(x_tab, channels)
        tab.backward()
        grads_tab = [p.grad.clone() for p in prior.parameters()]
        prior.zero_grad()
        x_ref = values.clone().requires_grad_(True)
        ref = sum(prior.bits(x_ref[channels == c][None, :], slice(c, c + 1)) for c in range(3))
        ref.backward()
        grads_ref = [p.grad.clone() for p in prior.parameters()]
        prior.zero_grad()
        integral = bool(torch.all(values == values.round()))
        assert float(tab.detach()) == pytest.approx(float(ref.detach()), rel=1e-5 if integral else 2e-3)
        for g_tab, g_ref in zip(grads_tab, grads_ref):
            torch.testing.assert_close(g_tab, g_ref, atol=0.02 * float(g_ref.abs().max()) + 1e-3, rtol=0.05)
        if not integral:  # slopes of the interpolant: the derivative up to the grid's resolution
            assert torch.corrcoef(torch.stack([x_tab.grad[:, 0], x_ref.grad[:, 0]]))[0, 1] > 0.99


def test_table_bits_estimate_matches_range_coder():
    model = _random_model(40, 30)
    tables, q = build_tables(model, integer_latents(model))
    levels = model.layout.split(q)
    segments = encode_latents(model.header, tables, levels)
    assert len(segments) == len(model.header.layout.segments)
    estimate = table_bits(model, tables, q)
    coded_bits = 32 * sum(words.size for words in segments)
    # each segment is its own range coder: its final flush costs up to two 32-bit words
    assert abs(coded_bits - estimate) <= 64 * len(segments) + 0.01 * estimate


def test_quality_knob_is_ordered():
    assert [q.level for q in QUALITIES] == list(range(1, 9))
    sizes = [q.log2_hashmap_size for q in QUALITIES]
    lambdas = [q.lmbda for q in QUALITIES]
    assert sizes == sorted(sizes) and lambdas == sorted(lambdas, reverse=True)
    assert DEFAULT_QUALITY in {q.level for q in QUALITIES}


# settings_for(preset, quality) as of shc 0.3.0, before presets became records: every field that differs
# from these encoder defaults, per preset x quality (a change here changes the encoder's files).
_SETTINGS_DEFAULTS = {
    "num_levels": 12, "min_res": 16, "max_res_scale": 0.5, "log2_hashmap_size": 15, "latent_dim": 1,
    "feat_dim": 1, "mlp_width": 16, "mlp_depth": 2, "num_groups": 12, "steps": 4000, "noise": 0.5,
    "anneal": 0.95, "lmbda": 0.008, "lr_latents": 0.02, "lr_network": 0.01, "lr_prior": 0.01,
    "lr_final": 0.02, "batch_pixels": 16384, "eval_every": 100, "entropy_coding": True,
    "interpolation": 1,  # version 4: the cubic B-spline (the paper preset keeps bilinear)
    "score_pixels": 1048576,  # 0.6.0: larger images are scored on a 1 M-pixel sample (Kodak photos whole)
    "context_width": 8, "context_fit_steps": 400,  # 0.7.0: a context network fitted after training (§5a)
    "prefix_fraction": 1 / 32,  # format version 7: share of batch pixels rendered from a prefix of the levels
    "square_levels": False, "lr_mlp": None,  # 0.9.0: the paper preset's square grids and MLP learning rate
    "subpixels": 1, "subpixel_mode": "jitter",  # 0.9.0: area training (off)
    # 0.10.0: the anchors' recipe as ablation knobs (issue 30), off by default
    "proxy": "gumbel", "softness_start": 0.35, "softness_end": 0.08, "latent_eps": 1e-8, "freeze_latents_final": False,
}
_FAST = {"steps": 800, "eval_every": 40}
# 0.9.0: the authors' public Kodak configuration (issue 21); the quality sets λ only
_PAPER = {"num_levels": 24, "num_groups": 24, "log2_hashmap_size": 11, "max_res_scale": 2 / 3, "square_levels": True,
          "steps": 60000, "batch_pixels": 4194304, "eval_every": 500, "interpolation": 0, "lr_latents": 0.01,
          "lr_mlp": 0.001, "lr_prior": 0.0001, "prefix_fraction": 0.0}
_SETTINGS_TABLE = {
    ("fast", 1): {"log2_hashmap_size": 13, "mlp_width": 12, "lmbda": 0.032, **_FAST},
    ("fast", 2): {"log2_hashmap_size": 14, "lmbda": 0.016, **_FAST},
    ("fast", 3): {**_FAST},
    ("fast", 4): {"log2_hashmap_size": 16, "lmbda": 0.004, **_FAST},
    ("fast", 5): {"max_res_scale": 0.75, "log2_hashmap_size": 16, "lmbda": 0.002, **_FAST},
    ("fast", 6): {"max_res_scale": 0.75, "log2_hashmap_size": 17, "lmbda": 0.001, **_FAST},
    ("fast", 7): {"max_res_scale": 1.0, "log2_hashmap_size": 19, "lmbda": 0.0005, **_FAST},
    ("fast", 8): {"max_res_scale": 1.0, "log2_hashmap_size": 19, "lmbda": 0.00025, **_FAST},
    ("default", 1): {"log2_hashmap_size": 13, "mlp_width": 12, "lmbda": 0.032},
    ("default", 2): {"log2_hashmap_size": 14, "lmbda": 0.016},
    ("default", 3): {},
    ("default", 4): {"log2_hashmap_size": 16, "lmbda": 0.004},
    ("default", 5): {"max_res_scale": 0.75, "log2_hashmap_size": 16, "lmbda": 0.002},
    ("default", 6): {"max_res_scale": 0.75, "log2_hashmap_size": 17, "lmbda": 0.001},
    ("default", 7): {"max_res_scale": 1.0, "log2_hashmap_size": 19, "lmbda": 0.0005},
    ("default", 8): {"max_res_scale": 1.0, "log2_hashmap_size": 19, "lmbda": 0.00025},
    # the paper preset keeps its grid (tables, extent) and MLP width at every quality
    ("paper", 1): {**_PAPER, "lmbda": 0.032},
    ("paper", 2): {**_PAPER, "lmbda": 0.016},
    ("paper", 3): {**_PAPER},
    ("paper", 4): {**_PAPER, "lmbda": 0.004},
    ("paper", 5): {**_PAPER, "lmbda": 0.002},
    ("paper", 6): {**_PAPER, "lmbda": 0.001},
    ("paper", 7): {**_PAPER, "lmbda": 0.0005},
    ("paper", 8): {**_PAPER, "lmbda": 0.00025},
}


@pytest.mark.parametrize(("preset", "quality"), sorted(_SETTINGS_TABLE))
def test_settings_for_every_preset_and_quality_are_unchanged(preset, quality):
    expected = {**_SETTINGS_DEFAULTS, **_SETTINGS_TABLE[preset, quality]}
    assert dataclasses.asdict(settings_for(preset, quality)) == expected
    assert dataclasses.asdict(settings_for(preset, quality, 7, entropy_coding=False)) == {
        **expected, "steps": 7, "entropy_coding": False}


def test_settings_table_covers_every_preset_and_quality():
    assert set(_SETTINGS_TABLE) == {(p.name, q.level) for p in PRESETS for q in QUALITIES}
    assert settings_for() == settings_for("default", DEFAULT_QUALITY)
    assert len({p.name for p in PRESETS}) == len(PRESETS) and all(p.summary for p in PRESETS)


def test_settings_for_rejects_unknown_preset_quality_and_steps():
    with pytest.raises(ValueError, match="choose one of fast, default, paper"):
        settings_for("turbo")
    with pytest.raises(ValueError, match=r"1\.\.8, got 9"):
        settings_for("default", 9)
    with pytest.raises(ValueError, match="steps must be >= 1"):
        settings_for("default", 3, 0)
    assert preset_named("paper").quality_sets_architecture is False
    assert preset_named("paper").quality_sets_table is False


def test_paper_preset_builds_the_papers_kodak_grid():
    """24 levels of 2^11 rows, square grids of 16 .. 512 cells per side on a 768 x 512 photo: the coarse
    levels dense, the fine ones hashed (the authors' public Kodak configuration)."""
    settings = settings_for("paper", 4)
    cells = level_cells(settings, 768, 512)
    assert len(cells) == 24 and cells[0] == (16, 16) and cells[-1] == (512, 512)
    assert all(nx == ny for nx, ny in cells)
    header = make_header(768, 512, settings)
    rows = [level.rows for level in header.layout.levels]
    assert max(rows) == 2**11 and rows[0] == 17 * 17 and rows.count(2**11) > 12
    assert quality_level(3).lmbda == 8e-3


def test_encode_small_photo_above_psnr_floor():
    rgb = load_rgb(DATA / "parrot_64x48.png")
    result = encode_image(rgb, preset="fast", quality=5, steps=150, seed=0)
    assert result.width == 64 and result.height == 48
    decoded = decode_bytes(result.data)
    assert decoded.shape == (48, 64, 3)
    assert result.psnr_db == pytest.approx(psnr_db(decoded, rgb))
    # measured 26.22 dB on 2026-12-03 (git 7b73370 and 2daa4ae alike); floor margin 0.4 dB
    assert result.psnr_db > 25.8
    assert result.bpp == len(result.data) * 8 / (64 * 48)
    # the file is the kept training state (scored with int8 weight steps) with each tensor's weight step then
    # chosen for rate-distortion (choose_weight_steps only takes a step that lowers the file's RD cost): the
    # file is no larger and costs no more than the training-time score of the kept state
    best = result.training.best
    file_cost = 10 ** (-result.psnr_db / 10) + result.settings.lmbda * result.bpp
    assert result.bpp <= best.bpp
    assert file_cost <= best.cost * 1.01, (result.psnr_db, result.bpp, best)


@pytest.mark.slow
def test_no_entropy_baseline_stores_float16_latents():
    """The Instant-NGP-style baseline: same grid, float16 latents stored raw - a valid file, decoded by the
    same decoder, many times larger than SHACIRA's at the same quality setting."""
    rgb = load_rgb(DATA / "parrot_64x48.png")
    raw = encode_image(rgb, preset="fast", quality=3, steps=150, seed=0, entropy_coding=False)
    coded = encode_image(rgb, preset="fast", quality=3, steps=150, seed=0)
    parsed = read_file(raw.data)
    assert not parsed.header.range_coded and parsed.tables == ()
    assert parsed.header.level_cells == read_file(coded.data).header.level_cells
    # LATN's framing and its index (8 bytes per segment), then the float16 latents: 2 bytes each
    segments = len(parsed.header.layout.segments)
    assert parsed.section_bytes["latents"] == 12 + 8 * segments + 2 * parsed.header.total_latents
    assert raw.num_bytes > 3 * coded.num_bytes
    # measured 41.32 dB (float16 baseline) and 27.99 dB (coded) on 2026-12-03 (git 7b73370); floor margin 0.4 dB
    assert raw.psnr_db == pytest.approx(psnr_db(decode_bytes(raw.data), rgb)) and raw.psnr_db > 40.9
    assert coded.psnr_db > 27.6
    assert abs(raw.training.best.bpp - raw.bpp) < 1e-9  # the score counts the real file exactly


def test_encoding_is_deterministic_for_a_seed():
    rgb = load_rgb(DATA / "parrot_64x48.png")[:24, :32]
    a = encode_image(rgb, preset="fast", steps=20, seed=3).data
    b = encode_image(rgb, preset="fast", steps=20, seed=3).data
    assert a == b


def test_timing_plan_leaves_the_file_unchanged():
    rgb = load_rgb(DATA / "parrot_64x48.png")[:24, :32]
    plans = []
    timed = encode_image(rgb, preset="fast", steps=20, seed=3, estimate=True, on_plan=plans.append)
    assert timed.data == encode_image(rgb, preset="fast", steps=20, seed=3).data
    assert plans == [timed.plan]
    plan = timed.plan
    assert (plan.steps, plan.pixels_per_step, plan.num_pixels, plan.minutes) == (20, 24 * 32, 24 * 32, None)
    assert plan.passes_per_pixel == 20
    assert plan.estimate_seconds > plan.calibration.seconds > 0
    assert plan.calibration.step_seconds > 0 and plan.calibration.steps_timed >= 2
    assert plan.describe().startswith("20 steps x 768 pixels = 20.0 passes per pixel; estimate ")
    assert timed.training.steps_run == 20


def test_minutes_pick_the_steps_that_fit(monkeypatch):
    import shc.codec.budget as budget

    # a fixed calibration (this machine's timings would make the steps vary): 50 ms a step, 20 ms a score
    fixed = budget.Calibration(step_seconds=0.05, score_seconds=0.02, tail_seconds=0.5, steps_timed=10, seconds=0.1)
    monkeypatch.setattr(budget, "calibrate", lambda *args, **kwargs: fixed)
    rgb = load_rgb(DATA / "parrot_64x48.png")[:24, :32]
    short, longer = (encode_image(rgb, preset="fast", minutes=minutes, seed=1) for minutes in (0.05, 0.1))
    assert 10 < short.plan.steps < longer.plan.steps
    for result, seconds in ((short, 3.0), (longer, 6.0)):
        plan = result.plan
        assert plan.minutes * 60 == pytest.approx(seconds)
        assert result.settings.steps == result.training.steps_run == plan.steps  # the schedules knew the steps
        budget_seconds = seconds * (1 - budget.BUDGET_MARGIN)
        # the most steps that fit: one step (and a score) more would not
        assert budget_seconds - 0.05 - 0.02 < plan.estimate_seconds <= budget_seconds
    assert longer.plan.steps - short.plan.steps == pytest.approx(3.0 * 0.9 / (0.05 + 0.02 / 40), abs=2)
    monkeypatch.setattr(budget, "calibrate", lambda *args, **kwargs: dataclasses.replace(fixed, tail_seconds=4.0))
    with pytest.raises(budget.BudgetError, match="no time to train"):
        encode_image(rgb, preset="fast", minutes=0.05)
    with pytest.raises(ValueError, match="minutes or steps"):
        encode_image(rgb, preset="fast", minutes=1, steps=10)


def test_decode_path_does_not_import_torch(tmp_path):
    code = (
        "import sys, shc, shc.format, shc.cli.common; from pathlib import Path; "
        f"img = shc.decode(Path({str(DATA / 'parrot_128x96_q3.shc')!r}).read_bytes(), scale=1.5); "
        "assert img.size == (192, 144), img.size; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_header_config_is_what_the_settings_ask():
    header = make_header(768, 512, settings_for("default", 3))
    assert isinstance(header.config, ModelConfig)
    assert header.level_cells[0][0] >= header.level_cells[0][1]  # landscape: x has more cells
    assert all(a[0] <= b[0] for a, b in zip(header.level_cells, header.level_cells[1:]))


def test_settings_scale_with_the_image_above_kodak_size():
    from shc.codec.presets import settings_for_image

    base = settings_for("default", 3)
    assert settings_for_image(base, 768, 512) == base
    assert settings_for_image(base, 64, 48) == base
    four_x = settings_for_image(base, 1536, 1024)  # 4x the pixels: 4x the table rows
    assert (four_x.log2_hashmap_size, four_x.mlp_width) == (base.log2_hashmap_size + 2, base.mlp_width)
    large = settings_for_image(base, 6000, 4000)  # 24 MP: 61x Kodak
    assert (large.log2_hashmap_size, large.mlp_width) == (base.log2_hashmap_size + 6, 48)
    # 200 MP: 2^23 rows (the paper's Pearl table) would exceed the format's 2^24 latents; the largest that fits
    huge = settings_for_image(base, 12240, 16320)
    assert huge.log2_hashmap_size == 22
    assert make_header(12240, 16320, huge).total_latents <= 1 << 24
    assert settings_for_image(dataclasses.replace(base, num_levels=4), 40000, 30000).log2_hashmap_size == 23
    assert dataclasses.replace(large, log2_hashmap_size=base.log2_hashmap_size, mlp_width=16) == base


def test_step_budget_grows_with_the_pixels_above_a_floor_up_to_a_cap():
    from shc.codec.presets import KODAK_PIXELS, MAX_STEPS_FACTOR, pixels_per_step, steps_for_image

    for preset, steps in (("default", 4000), ("fast", 800)):
        base = settings_for(preset, 3)
        # up to Kodak's size (and well past it) exactly the preset's steps, as the settings pins above say
        for width, height in ((64, 48), (512, 768), (768, 512), (2048, 1536)):
            assert steps_for_image(base, width, height) == steps
        kodak_passes = steps * pixels_per_step(base, KODAK_PIXELS) / KODAK_PIXELS
        sizes = [(3072, 2048), (4000, 3000), (6000, 4000), (8160, 6120), (12240, 16320), (40000, 30000)]
        budgets = [steps_for_image(base, width, height) for width, height in sizes]
        assert budgets == sorted(budgets) and budgets[2] > steps  # 24 MP trains longer
        for (width, height), budget in zip(sizes, budgets):
            passes = budget * pixels_per_step(base, width * height) / (width * height)
            assert budget <= MAX_STEPS_FACTOR * steps
            assert budget == MAX_STEPS_FACTOR * steps or passes >= kodak_passes / 16  # the floor, until the cap
        assert budgets[-1] == MAX_STEPS_FACTOR * steps
    default = settings_for("default", 3)
    assert steps_for_image(default, 6000, 4000) == 15259  # 24 MP: 10.4 passes per pixel, not 2.7
    assert steps_for_image(default, 8160, 6120) == 16000  # 50 MP: the cap
    assert steps_for_image(settings_for("paper", 3), 6000, 4000) == 60000  # 4 M-pixel batches: past its floor
    assert steps_for_image(dataclasses.replace(default, steps=7), 12240, 16320) == 28  # 4 x, whatever the preset
    assert pixels_per_step(default, 64 * 48) == 64 * 48
    assert pixels_per_step(dataclasses.replace(default, subpixels=2, subpixel_mode="box"), 10**6) == 4096
