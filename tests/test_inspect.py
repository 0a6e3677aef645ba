"""Tests for ``shc inspect`` and :mod:`shc.format.inspect`: per-level bits and feature-map montages.

The golden files are decoded through the library (they may be regenerated to a newer format version, so no
hashes here); synthetic files built with the format API cover what they lack: hashed levels, several latent
dimensions and features per level, groups spanning several levels, float16 latents. No training.
"""

from __future__ import annotations

import json
import subprocess
import sys
from io import BytesIO
from pathlib import Path

import constriction
import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shc.cli.main import cli
from shc.format import constants as C
from shc.format.container import ShcFile, read_file, write_file
from shc.format.decoder import Synthesis, decode_bytes, to_uint8
from shc.format.entropy import encode_latents, file_latents, histogram_tables, pack_float16_latents
from shc.format.header import Header, ModelConfig
from shc.format.weights import QuantizedWeights, weight_shapes
from shc.format.inspect import (
    FLOAT16_BITS,
    feature_image,
    is_flat,
    latent_payload_bytes,
    level_bits,
    level_feature_maps,
    level_stats,
    montage,
    preview_size,
)

DATA = Path(__file__).parent / "data"
GOLDEN = sorted(DATA.glob("*.shc")) + sorted((DATA / "compat").glob("*.shc"))
PARROT = DATA / "parrot_128x96_q3.shc"


def parse(path: Path) -> tuple[bytes, ShcFile, list[np.ndarray]]:
    data = path.read_bytes()
    parsed = read_file(data)
    return data, parsed, file_latents(parsed)


def synthetic(
    latent_coding: int = C.LATENTS_RANGE_CODED,
    seed: int = 0,
    constant_last: bool = True,
    cells: tuple[tuple[int, int], ...] = ((3, 2), (7, 5), (12, 9)),
    log2_hashmap_size: int = 5,
) -> bytes:
    """A 40x30 file with (by default) a dense level, two hashed ones, D = 2, F = 3 and two groups (levels
    0-1, then 2), level l's latents spread wider the finer it is.

    With ``constant_last`` both latent dimensions of level 2, alone in group 1, are one symbol each.
    """
    config = ModelConfig(num_levels=3, log2_hashmap_size=log2_hashmap_size, latent_dim=2, feat_dim=3, mlp_width=6,
                         mlp_depth=1, num_groups=2, interpolation=C.INTERPOLATION_BSPLINE)
    header = Header(width=40, height=30, config=config, level_cells=cells, latent_coding=latent_coding)
    header.validate()
    rng = np.random.default_rng(seed)
    shapes = weight_shapes(header)
    weights = QuantizedWeights(rng.uniform(0.005, 0.02, len(shapes)).astype(np.float32),
                               rng.integers(-100, 101, sum(int(np.prod(s)) for _, s in shapes)))
    if latent_coding == C.LATENTS_FLOAT16:
        levels = [rng.normal(0, 2, (level.rows, 2)).astype(np.float16) for level in header.layout.levels]
        return write_file(header, weights, (), pack_float16_latents(header, levels))
    latents = [np.clip(np.rint(rng.laplace(0, 1.5 + level.index, (level.rows, 2))), -20, 20).astype(np.int32)
               for level in header.layout.levels]
    if constant_last:
        latents[2][:, 0], latents[2][:, 1] = 3, -2
    tables = histogram_tables(header, latents)
    return write_file(header, weights, tables, encode_latents(header, tables, latents))


# ---------------------------------------------------------------------------------------------- bits


def segment_bytes(parsed: ShcFile) -> int:
    """Bytes of the coded latents: every latent segment's (version 7: after the LATN index; before it, the
    LATN payload), from what the file holds rather than from shc.format.inspect."""
    per_value = 4 if parsed.header.range_coded else 2  # uint32 words, or float16 latents
    return per_value * sum(int(values.size) for values in parsed.latent_segments)


@pytest.mark.parametrize("path", GOLDEN, ids=lambda p: p.name)
def test_level_bits_add_up_to_the_latn_payload_of_the_golden_files(path: Path) -> None:
    data, parsed, latents = parse(path)
    bits = level_bits(parsed, latents)
    assert len(bits) == parsed.header.config.num_levels and min(bits) >= 0.0
    segments = len(parsed.latent_segments)
    assert segments == 1 and (data[4] < 7 or segment_bytes(parsed) == parsed.section_bytes["latents"] - 12 - 8)
    # each segment's range coder output exceeds the ideal cost by its final flush: at most two 32-bit words
    assert abs(segment_bytes(parsed) - sum(bits) / 8) <= 8 * segments, (sum(bits) / 8, segment_bytes(parsed))


def test_latent_payload_bytes_of_a_version_6_file_are_its_latn_payload() -> None:
    _, parsed, _ = parse(DATA / "compat" / "parrot_128x96_q3_v6.shc")
    assert latent_payload_bytes(parsed) == segment_bytes(parsed) == parsed.section_bytes["latents"] - 12


def test_latent_payload_bytes_of_a_version_7_file_are_its_segments() -> None:
    _, parsed, _ = parse(PARROT)
    assert latent_payload_bytes(parsed) == segment_bytes(parsed)


def test_the_golden_latents_are_not_free() -> None:
    _, parsed, latents = parse(PARROT)
    bits = level_bits(parsed, latents)
    assert sum(bits) > 1000  # so the payload comparison above is not 0 == 0 for every file


@pytest.mark.parametrize("seed", [0, 1])
def test_level_bits_of_hashed_levels_with_two_dimensions_and_shared_groups(seed: int) -> None:
    data = synthetic(seed=seed)
    parsed = read_file(data)
    latents = file_latents(parsed)
    assert [level.dense for level in parsed.header.layout.levels] == [True, False, False]
    bits = level_bits(parsed, latents)
    assert abs(segment_bytes(parsed) - sum(bits) / 8) <= 8 * len(parsed.latent_segments)
    assert bits[0] > 0 and bits[1] > 0
    assert bits[2] == 0.0  # both dimensions one symbol, in a group of its own: one-symbol tables code nothing


def test_each_level_is_priced_with_its_own_tables() -> None:
    """Independently of level_bits: range-code each level alone with the models of SPEC §5 (table
    floor(l * G / L) * D + d) and compare the word count with that level's ideal cost."""
    parsed = read_file(synthetic(seed=3, constant_last=False, cells=((10, 8), (20, 15), (40, 30)), log2_hashmap_size=8))
    assert [level.dense for level in parsed.header.layout.levels] == [True, False, False]
    latents = file_latents(parsed)
    cfg = parsed.header.config
    bits = level_bits(parsed, latents)
    for level, lat in enumerate(latents):
        encoder = constriction.stream.queue.RangeEncoder()
        for dim in range(cfg.latent_dim):
            table = parsed.tables[(level * cfg.num_groups // cfg.num_levels) * cfg.latent_dim + dim]
            model = constriction.stream.model.Categorical(table.counts / 2.0**C.TABLE_PRECISION, perfect=False)
            encoder.encode((lat[:, dim] - table.min_symbol).astype(np.int32), model)
        coded_bits = 32 * encoder.num_words()
        assert bits[level] > 300
        assert bits[level] <= coded_bits <= bits[level] + 64, (level, bits[level], coded_bits)


def test_a_golden_level_of_one_symbol_costs_nothing() -> None:
    _, parsed, latents = parse(PARROT)
    table = parsed.tables[0]
    assert len(table.counts) == 1  # level 0 of this file: its own one-symbol table
    assert level_bits(parsed, latents)[0] == 0.0
    stats = level_stats(parsed, latents)
    assert stats[0].bits == 0.0 and stats[0].share == 0.0
    assert sum(s.share for s in stats) == pytest.approx(1.0)


def test_float16_latents_cost_16_bits_each() -> None:
    parsed = read_file(synthetic(C.LATENTS_FLOAT16))
    latents = file_latents(parsed)
    bits = level_bits(parsed, latents)
    assert bits == [float(FLOAT16_BITS * level.rows * 2) for level in parsed.header.layout.levels]
    assert sum(bits) == 8 * segment_bytes(parsed)


def test_level_bits_refuses_latents_that_do_not_fit_the_file() -> None:
    _, parsed, latents = parse(PARROT)
    with pytest.raises(ValueError, match="levels"):
        level_bits(parsed, latents[:-1])
    with pytest.raises(ValueError, match="shape"):
        level_bits(parsed, [latents[0][:-1], *latents[1:]])
    # this file codes levels 1.. under its context network (SPEC §5a): a latent far past level 1's range
    # (more than span - 1 from any centre the network can predict: no symbol of its tables)
    assert parsed.header.layout.context_levels[0].index == 1
    outside = [lat.copy() for lat in latents]
    outside[1][0, 0] = parsed.context.level_low[0] + 2 * parsed.context.level_span[0]
    with pytest.raises(ValueError, match="level 1 latents lie outside its context range"):
        level_bits(parsed, outside)
    _, factorized, latents = parse(DATA / "parrot_64x48_q1.shc")  # no context network: a table per level
    assert factorized.context is None and len(factorized.tables) == factorized.header.config.num_levels
    outside = [lat.copy() for lat in latents]
    outside[1][0, 0] = factorized.tables[1].max_symbol + 1
    with pytest.raises(ValueError, match="outside table 1"):
        level_bits(factorized, outside)


# ---------------------------------------------------------------------------------------------- feature maps


def test_preview_size_keeps_the_aspect_ratio_and_sets_the_long_side() -> None:
    assert preview_size(128, 96) == (256, 192)
    assert preview_size(96, 128, 64) == (48, 64)
    assert preview_size(4000, 10, 256) == (256, 1)
    with pytest.raises(ValueError, match="sizes must be positive, got 0x10"):
        preview_size(0, 10)


@pytest.mark.parametrize("size", [(37, 23), (128, 96), (300, 5)])
def test_feature_maps_are_what_the_decoder_feeds_its_mlp(size: tuple[int, int]) -> None:
    data, parsed, latents = parse(PARROT)
    width, height = size
    maps = level_feature_maps(parsed, latents, width, height)
    cfg = parsed.header.config
    assert len(maps) == cfg.num_levels and maps[0].shape == (cfg.feat_dim, height, width)
    assert all(m.dtype == np.float32 for m in maps)
    synthesis = Synthesis(parsed, latents)
    features = np.concatenate(maps).reshape(cfg.num_levels * cfg.feat_dim, -1)
    rendered = to_uint8(synthesis.mlp(features).T).reshape(height, width, -1)
    np.testing.assert_array_equal(rendered, decode_bytes(data, size=size))
    # and point by point, where each level's rows are: pixel (i, j) of level l
    columns, rows = np.array([0, width - 1, width // 2]), np.array([height - 1, 0, height // 3])
    points = synthesis.features(width, height, columns, rows).reshape(cfg.num_levels, cfg.feat_dim, -1)
    for level, feature_map in enumerate(maps):
        np.testing.assert_array_equal(feature_map[:, rows, columns], points[level])


def test_feature_maps_of_several_features_per_level_and_hashed_levels() -> None:
    parsed = read_file(synthetic(seed=2))
    latents = file_latents(parsed)
    maps = level_feature_maps(parsed, latents, 50, 20)
    synthesis = Synthesis(parsed, latents)
    expected = synthesis.tile_features(50, 20, np.arange(50), np.arange(20)).reshape(3, 3, 20, 50)
    np.testing.assert_array_equal(np.stack(maps), expected)
    assert not is_flat(maps[1][0]) and all(is_flat(channel) for channel in maps[2])


def test_feature_image_stretches_each_channel_and_keeps_flat_ones_gray() -> None:
    ramp = np.linspace(-2.0, 5.0, 12, dtype=np.float32).reshape(1, 3, 4)
    gray = feature_image(ramp)
    assert gray.shape == (3, 4) and gray.dtype == np.uint8
    assert gray.min() == 0 and gray.max() == 255 and gray[0, 0] == 0 and gray[-1, -1] == 255
    flat = np.full((1, 3, 4), -0.0771626, dtype=np.float32)
    flat[0, 1, 2] = np.nextafter(flat[0, 1, 2], np.float32(0))  # rounding noise of a blend of one value
    assert is_flat(flat) and np.all(feature_image(flat) == 128)
    two = np.stack([ramp[0], -ramp[0]])
    rgb = feature_image(two)
    assert rgb.shape == (3, 4, 3) and np.all(rgb[..., 2] == 0)
    np.testing.assert_array_equal(rgb[..., 1], 255 - rgb[..., 0])
    five = np.concatenate([two, ramp, ramp * 3, ramp])
    assert feature_image(five).shape == (3, 4, 3)
    broken = ramp.copy()
    broken[0, 0, 0] = np.nan
    low, high = float(ramp[0, 0, 1]), float(ramp[0, -1, -1])  # the NaN replaced the minimum
    shown = feature_image(broken)
    assert shown[0, 1] == 0 and shown[-1, -1] == 255
    assert shown[0, 0] == np.rint((0.0 - low) / (high - low) * 255.0)  # NaN counts as 0


def _find(image: np.ndarray, tile: np.ndarray) -> list[tuple[int, int]]:
    """Top-left corners where ``tile`` (h, w, 3) occurs in ``image`` (H, W, 3)."""
    height, width = tile.shape[:2]
    first = tile[0].tobytes()
    found = []
    for y in range(image.shape[0] - height + 1):
        row, start = image[y].tobytes(), 0
        while (at := row.find(first, start)) >= 0:
            start = at + 1
            if at % 3 == 0 and np.array_equal(image[y : y + height, at // 3 : at // 3 + width], tile):
                found.append((y, at // 3))
    return found


@pytest.mark.parametrize("columns", [None, 1, 12])
def test_montage_shows_every_level_in_order(columns: int | None) -> None:
    _, parsed, latents = parse(PARROT)
    image = montage(parsed, latents, tile=64, columns=columns)
    assert image.mode == "RGB"
    pixels = np.asarray(image)
    tile_w, tile_h = preview_size(128, 96, 64)
    per_row = columns or 4
    num_rows = -(-12 // per_row)
    assert image.width >= per_row * tile_w and image.height >= num_rows * tile_h
    corners = []
    for feature_map in level_feature_maps(parsed, latents, tile_w, tile_h):
        tile = np.asarray(Image.fromarray(feature_image(feature_map)).convert("RGB"))
        found = _find(pixels, tile)
        assert found, "a level's tile is missing"
        corners.append(found)
    unique = [(level, places[0]) for level, places in enumerate(corners) if len(places) == 1]
    assert len(unique) >= 10  # all but flat or repeated tiles are found exactly once
    positions = [place for _, place in unique]
    # coarse to fine, row by row
    assert positions == sorted(positions)
    if columns == 1:
        assert len({x for _, x in positions}) == 1
    if columns == 12:
        assert len({y for y, _ in positions}) == 1


def test_montage_tile_size_and_float16_files() -> None:
    parsed = read_file(synthetic(C.LATENTS_FLOAT16))
    latents = file_latents(parsed)
    small = montage(parsed, latents, tile=32)
    large = montage(parsed, latents, tile=300)
    assert large.width > small.width and large.height > small.height
    assert large.width >= 2 * 300  # ceil(sqrt(3)) = 2 columns of 300-pixel tiles
    with pytest.raises(ValueError, match="columns must be positive, got 0"):
        montage(parsed, latents, columns=0)


# ---------------------------------------------------------------------------------------------- CLI


def invoke(*args):
    return CliRunner().invoke(cli, ["inspect", *[str(a) for a in args]])


def test_cli_writes_the_montage_and_prints_the_table(tmp_path: Path) -> None:
    out = tmp_path / "levels.png"
    result = invoke(PARROT, "-o", out, "--tile", 64)
    assert result.exit_code == 0, result.output
    _, parsed, latents = parse(PARROT)
    with Image.open(out) as written:
        assert written.format == "PNG"
        pixels = np.asarray(written.convert("RGB"))
    # independently of montage(): every level's feature map, at the --tile size, is in the written image
    tile_w, tile_h = preview_size(128, 96, 64)
    assert (tile_w, tile_h) == (64, 48)
    maps = level_feature_maps(parsed, latents, tile_w, tile_h)
    for level, feature_map in enumerate(maps):
        tile = np.asarray(Image.fromarray(feature_image(feature_map)).convert("RGB"))
        assert _find(pixels, tile), f"level {level}'s 64 x 48 tile is missing"
    # and the CLI passes its arguments on (the file size and name in the title)
    expected = montage(parsed, latents, tile=64, num_bytes=PARROT.stat().st_size, name=PARROT.name)
    np.testing.assert_array_equal(pixels, np.asarray(expected))
    lines = result.stdout.splitlines()
    assert len(lines) == 2 + 12 + 1
    assert lines[0].startswith(f"{PARROT}: 128x96, {PARROT.stat().st_size} bytes")
    assert lines[1].split() == ["level", "cells", "storage", "latents", "bits", "%"]
    first = lines[2].split()
    assert first[:4] == ["0", "16x12", "dense", "221"] and float(first[4]) == 0.0
    bits = level_bits(parsed, latents)
    assert [float(line.split()[4]) for line in lines[2:-1]] == pytest.approx(bits, abs=0.05)
    assert float(lines[-1].split()[2]) == pytest.approx(sum(bits), abs=0.05)
    assert result.stderr == ""


def test_cli_refuses_to_overwrite_without_force(tmp_path: Path) -> None:
    out = tmp_path / "levels.png"
    out.write_bytes(b"keep me")
    result = invoke(PARROT, "-o", out)
    assert result.exit_code == 1 and "exists" in result.stderr and "--force" in result.stderr
    assert out.read_bytes() == b"keep me"
    result = invoke(PARROT, "-o", out, "--force", "--tile", 32)
    assert result.exit_code == 0, result.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in tmp_path.iterdir()] == ["levels.png"]  # no temporary file left behind


@pytest.mark.parametrize("make", [
    lambda data: b"not an shc file",
    lambda data: data[:-3],  # truncated
    lambda data: data[:-5] + bytes([data[-5] ^ 1]) + data[-4:],  # a latent segment's byte flipped: CRC mismatch
])
def test_cli_malformed_file_is_exit_2_with_one_line(tmp_path: Path, make) -> None:
    bad = tmp_path / "bad.shc"
    bad.write_bytes(make(PARROT.read_bytes()))
    out = tmp_path / "levels.png"
    result = invoke(bad, "-o", out)
    assert result.exit_code == 2, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: {bad}: ")
    assert result.stdout == "" and not out.exists()


def test_cli_missing_file_is_exit_2() -> None:
    result = invoke("no-such-file.shc")
    assert result.exit_code == 2 and result.stderr.startswith("Error: no-such-file.shc")


def test_cli_json(tmp_path: Path) -> None:
    result = invoke(PARROT, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    _, parsed, latents = parse(PARROT)
    bits = level_bits(parsed, latents)
    assert report["output"] is None and report["bytes"] == PARROT.stat().st_size
    assert report["latent_coding"] == "range-coded"
    assert report["latn_payload_bytes"] == latent_payload_bytes(parsed)
    assert [entry["level"] for entry in report["levels"]] == list(range(12))
    assert [entry["bits"] for entry in report["levels"]] == pytest.approx(bits, abs=1e-3)
    assert report["latent_bits"] == pytest.approx(sum(bits), abs=1e-3)
    assert report["levels"][11] | {"bits": 0, "share": 0} == {
        "level": 11, "nx": 64, "ny": 48, "storage": "dense", "rows": 65 * 49, "latents": 65 * 49, "bits": 0, "share": 0}
    hashed = tmp_path / "hashed.shc"
    hashed.write_bytes(synthetic())
    levels = json.loads(invoke(hashed, "--json").stdout)["levels"]
    assert [entry["storage"] for entry in levels] == ["dense", "hashed", "hashed"]
    assert [entry["latents"] for entry in levels] == [24, 64, 64]


def test_cli_png_to_stdout_sends_the_table_to_stderr() -> None:
    result = invoke(PARROT, "-o", "-", "--tile", 32)
    assert result.exit_code == 0, result.output
    assert result.stdout_bytes[:8] == b"\x89PNG\r\n\x1a\n"
    assert Image.open(BytesIO(result.stdout_bytes)).size[0] > 4 * 32
    assert "level" in result.stderr and "total" in result.stderr


def test_inspect_imports_no_torch(tmp_path: Path) -> None:
    code = (
        "import sys, shc.format.inspect, shc.cli.inspect_cmd\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'torch'))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
