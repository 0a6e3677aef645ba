"""Level-of-detail prefixes (SPEC §6): the trainer's truncated render against the decoder's prefix render,
the random prefixes of a training batch, ``shc decode --levels`` and Pillow's draft reading a prefix."""

from __future__ import annotations

import dataclasses
import io
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

import shc.pillow  # noqa: F401  (registers the plugin)
from shc.cli.main import cli
from shc.codec.encoder import make_header
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import settings_for
from shc.codec.tables import build_tables, integer_latents
from shc.codec.train import prefix_levels
from shc.format.container import read_file, write_file
from shc.format.decoder import Synthesis, decode_bytes
from shc.format.entropy import encode_latents, file_latents, histogram_tables
from shc.format.header import Header, ModelConfig
from shc.format.reader import ShcReader, preview_levels
from shc.format.weights import QuantizedWeights, weight_shapes


def _model(width: int, height: int) -> GridINR:
    settings = dataclasses.replace(settings_for("fast", 3), log2_hashmap_size=8, num_levels=6, num_groups=3)
    torch.manual_seed(2)
    model = GridINR(make_header(width, height, settings))
    with torch.no_grad():
        model.latents.copy_(torch.randint(-4, 5, model.latents.shape).float())
        for p in model.network_parameters():
            p.add_(0.3 * torch.randn_like(p))
    return model


@pytest.mark.parametrize("kept", [1, 3, 5])
def test_truncated_training_render_matches_the_decoders_prefix(kept: int) -> None:
    """The trainer renders a prefix with the absent levels' features set to the latent decoder's bias; the
    decoder blends the features of zero latents, which are that bias (its weights sum to one, up to float
    rounding): the two agree as the full renders do."""
    width, height = 36, 28
    model = _model(width, height)
    header = model.header
    q = integer_latents(model)
    grid = PixelGrid(header, width, height)
    with torch.no_grad():
        kept_t = torch.full((width * height,), kept, dtype=torch.int64)
        torch_rgb = model.render(torch.from_numpy(q).float(), grid.blend_plan().full(), False, quantize_weights=True,
                                 levels_kept=kept_t).numpy()
        full_rgb = model.render(torch.from_numpy(q).float(), grid.blend_plan().full(), False,
                                quantize_weights=True).numpy()
    tables, q = build_tables(model, q)
    data = write_file(header, model.quantized_weights(), tables, encode_latents(header, tables, model.layout.split(q)))
    parsed = read_file(data)
    latents = [lat if index < kept else np.zeros_like(lat) for index, lat in enumerate(file_latents(parsed))]
    synthesis = Synthesis(parsed, latents)
    numpy_rgb = synthesis.mlp(synthesis.tile_features(width, height, np.arange(width), np.arange(height))).T
    np.testing.assert_allclose(numpy_rgb, torch_rgb, atol=2e-5, rtol=1e-5)
    assert np.abs(numpy_rgb - full_rgb).max() > 1e-3  # the prefix really renders something else
    # and the reader's prefix decode is that rendering
    np.testing.assert_array_equal(ShcReader(data).synthesis(levels=kept).render(width, height),
                                  synthesis.render(width, height))
    np.testing.assert_array_equal(decode_bytes(data, levels=kept), synthesis.render(width, height))


def test_prefix_levels_of_a_batch() -> None:
    rng = np.random.default_rng(0)
    assert prefix_levels(0.0, 1000, 12, rng, torch.device("cpu")) is None
    assert prefix_levels(0.5, 1000, 1, rng, torch.device("cpu")) is None
    kept = prefix_levels(0.25, 20_000, 12, rng, torch.device("cpu")).numpy()
    truncated = kept < 12
    assert abs(truncated.mean() - 0.25) < 0.02
    assert kept.min() == 1 and kept[truncated].max() == 11  # prefixes 1 .. L - 1, uniformly
    counts = np.bincount(kept[truncated], minlength=12)[1:]
    assert counts.min() > 0.7 * counts.mean()


def _chunked_file(coarse_dense: bool = True) -> bytes:
    """A synthetic file with two whole levels and two chunked ones (11 segments), sparse latents."""
    config = ModelConfig(num_levels=4, log2_hashmap_size=18, num_groups=2, interpolation=1, mlp_width=8, mlp_depth=1)
    header = Header(1200, 1000, config, ((10, 8), (100, 80), (400, 350), (1100, 900)))
    rng = np.random.default_rng(5)
    latents = [np.where(rng.random((level.rows, 1)) < 0.05, rng.integers(-2, 3, (level.rows, 1)), 0).astype(np.int32)
               for level in header.layout.levels]
    tables = histogram_tables(header, latents)
    count = sum(int(np.prod(shape)) for _, shape in weight_shapes(header))
    weights = QuantizedWeights(np.full(len(weight_shapes(header)), 0.02, np.float32), rng.integers(-60, 60, count))
    return write_file(header, weights, tables, encode_latents(header, tables, latents))


def test_decode_levels_reads_the_prefix_and_says_so(tmp_path) -> None:
    data = _chunked_file()
    path = tmp_path / "chunked.shc"
    path.write_bytes(data)
    runner = CliRunner()
    result = runner.invoke(cli, ["decode", str(path), "--levels", "2", "--size", "120x100", "-o",
                                  str(tmp_path / "p.png"), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output.strip().splitlines()[-1])
    assert report["levels"] == 2 and report["bytes_read"] < len(data) // 10 and report["file_bytes"] == len(data)
    with Image.open(tmp_path / "p.png") as im:
        np.testing.assert_array_equal(np.asarray(im), decode_bytes(data, size=(120, 100), levels=2))
    # a single decode says how much it read
    result = runner.invoke(cli, ["decode", str(path), "--levels", "2", "-o", str(tmp_path / "q.png")])
    assert result.exit_code == 0 and f"of {len(data):,} bytes (2 levels)" in result.output
    # more levels than the file has, and a truncated file without --levels: clean errors (exit 2)
    result = runner.invoke(cli, ["decode", str(path), "--levels", "9", "-o", str(tmp_path / "r.png")])
    assert result.exit_code == 1 and "has 4 levels" in result.output  # a usage error
    (tmp_path / "cut.shc").write_bytes(data[: len(data) // 2])
    result = runner.invoke(cli, ["decode", str(tmp_path / "cut.shc"), "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 2 and "--levels 3" in result.output
    result = runner.invoke(cli, ["decode", str(tmp_path / "cut.shc"), "--levels", "3", "-o", str(tmp_path / "s.png")])
    assert result.exit_code == 0, result.output


def test_pillow_draft_renders_from_the_prefix_it_needs() -> None:
    data = _chunked_file()
    header = read_file(data).header
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (75, 62))
        im.load()
        levels = preview_levels(header, *im.size)
        assert im.size == (75, 63) and levels == 2  # the 400 x 350 cells level is too fine for 75 px
        assert im.info["shc_levels"] == levels and im.info["shc_bytes_read"] < len(data) // 10
        np.testing.assert_array_equal(np.asarray(im), decode_bytes(data, size=im.size, levels=levels))
    with Image.open(io.BytesIO(data)) as im:
        im.load()  # native size: the whole file
        assert im.info["shc_levels"] == 4 and im.info["shc_bytes_read"] == len(data)


def test_preview_levels() -> None:
    header = read_file(_chunked_file()).header
    assert preview_levels(header, 1200, 1000) == 4
    assert preview_levels(header, 300, 250) == 4  # 1100 x 900 cells <= 4 x (300 x 250)
    assert preview_levels(header, 150, 125) == 3
    assert preview_levels(header, 75, 62) == 2
    assert preview_levels(header, 5, 4) == 1  # never fewer than one level


def test_region_renderer_decodes_each_chunk_once_and_renders_the_full_decodes_pixels() -> None:
    """The tile server's renderer: the whole levels on opening, a chunk when a region first needs it; every
    region equal to the same box of a full decode, at the native size and at a pyramid level's."""
    from shc.format.reader import RegionRenderer

    data = _chunked_file()
    renderer = RegionRenderer(ShcReader(data))
    assert renderer.segments_decoded == 1  # the segment of the two whole levels
    full = decode_bytes(data)
    seen = []
    for box in [(0, 0, 254, 254), (100, 100, 300, 300), (500, 400, 760, 660), (946, 746, 1200, 1000)]:
        left, top, right, bottom = box
        np.testing.assert_array_equal(renderer.render(1200, 1000, box), full[top:bottom, left:right])
        seen.append(renderer.segments_decoded)
    assert seen[0] == seen[1] < seen[2] < 11  # (100..300) needs no chunk that (0..254) did not
    small = decode_bytes(data, size=(150, 125))
    np.testing.assert_array_equal(renderer.render(150, 125, (0, 0, 150, 125)), small)
    assert renderer.segments_decoded == 11


def test_a_synthesis_prefix_and_the_region_renderer_render_what_the_readers_prefix_renders() -> None:
    from shc.format.reader import RegionRenderer

    data = _chunked_file()
    whole = Synthesis(read_file(data), file_latents(read_file(data)))
    renderer = RegionRenderer(ShcReader(data))
    for levels in (1, 2, 3):
        expected = ShcReader(data).synthesis(300, 250, levels=levels).render(300, 250)
        np.testing.assert_array_equal(whole.prefix(levels).render(300, 250), expected)
        np.testing.assert_array_equal(renderer.render(300, 250, (40, 30, 200, 190), levels), expected[30:190, 40:200])
    assert renderer.segments_decoded < 11  # the chunks of level 3 were never needed
