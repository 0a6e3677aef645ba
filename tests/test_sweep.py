"""``shc sweep`` (shc.bench.sweep): rows, plot and reports written, resumption, shared baseline points, an
interrupted run, and one-line errors with exit code 2 for what the sweep cannot take.

The encodes are real but tiny (a 32x24 generated image, 4 levels, an MLP 8 wide, 2 training steps): about
a second a point on one thread.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shc.bench import sweep as sw
from shc.cli.sweep_cmd import sweep
from shc.format.grid import level_num_rows

TINY = ["--preset", "fast", "--steps", "2", "--set", "num_levels=4", "--set", "mlp_width=8", "--threads", "1",
        "--no-progress", "--no-ms-ssim"]


@pytest.fixture
def image(tmp_path: Path) -> Path:
    y, x = np.mgrid[0:24, 0:32]
    rgb = np.stack([128 + 100 * np.sin(x / 5), 128 + 100 * np.cos(y / 7), (x * 8) % 256], axis=-1)
    path = tmp_path / "tiny.png"
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def encodes(monkeypatch: pytest.MonkeyPatch) -> list:
    """The real encoder, counted: each call appends the settings it trained."""
    import shc.cli.encoder

    real = shc.cli.encoder.encode_image
    calls: list = []

    def counted(*args, **kwargs):
        calls.append(kwargs["settings"])
        return real(*args, **kwargs)

    monkeypatch.setattr(shc.cli.encoder, "encode_image", counted)
    return calls


def run(*args: str | Path):
    return CliRunner().invoke(sweep, [str(a) for a in args])


def read_rows(folder: Path) -> list[dict[str, str]]:
    with (folder / "sweep.csv").open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == sw.FIELDS
        return list(reader)


def test_writes_rows_plot_and_reports_then_resumes(tmp_path: Path, image: Path, encodes: list) -> None:
    out = tmp_path / "out"
    result = run(image, "-o", out, "--param", "mlp_depth", "--values", "1,2", "--tables", "5,6", *TINY)
    assert result.exit_code == 0, result.output
    rows = read_rows(out)
    assert len(encodes) == 4
    points = sorted((r["value"], r["log2_hashmap_size"]) for r in rows)
    assert points == [("1", "5"), ("1", "6"), ("2", "5"), ("2", "6")]
    for row in rows:
        assert row["param"] == "mlp_depth" and row["image"] == "tiny" and row["steps"] == "2"
        assert float(row["bpp"]) == pytest.approx(int(row["bytes"]) * 8 / (32 * 24), abs=1e-6)  # the real file
        assert 0 < float(row["psnr_rgb"]) < 60 and float(row["encode_s"]) > 0 and float(row["decode_s"]) > 0
        assert row["measured_as"] == f"mlp_depth={row['value']}"
    trained = {(s.mlp_depth, s.log2_hashmap_size) for s in encodes}
    assert trained == {(1, 5), (1, 6), (2, 5), (2, 6)}
    assert all(s.num_levels == 4 and s.num_groups == 4 and s.mlp_width == 8 and s.latent_dim == 1 for s in encodes)
    with Image.open(out / "mlp_depth.png") as plot:
        assert plot.format == "PNG" and plot.size[0] > 500
    assert {p.name for p in (out / "json").iterdir()} == {"mlp_depth_1.json", "mlp_depth_2.json"}
    assert "| mlp_depth | 2 | 2 | 2 | +0.0 |" in (out / "bd_rates.md").read_text(encoding="utf-8")  # the baseline
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary or lock files left

    before = (out / "sweep.csv").read_bytes()
    result = run(image, "-o", out, "--param", "mlp_depth", "--values", "1,2", "--tables", "5,6", *TINY)
    assert result.exit_code == 0, result.output
    assert len(encodes) == 4  # nothing measured again
    assert (out / "sweep.csv").read_bytes() == before

    result = run(image, "-o", out, "--param", "mlp_depth", "--values", "1,2,3", "--tables", "5,6", *TINY)
    assert result.exit_code == 0, result.output
    assert [(s.mlp_depth, s.log2_hashmap_size) for s in encodes[4:]] == [(3, 5), (3, 6)]  # only the new value
    assert len(read_rows(out)) == 6


def test_baseline_points_are_shared_between_parameters(tmp_path: Path, image: Path, encodes: list) -> None:
    out = tmp_path / "out"
    assert run(image, "-o", out, "--param", "mlp_depth", "--values", "2,1", "--tables", "6", *TINY).exit_code == 0
    result = run(image, "-o", out, "--param", "latent_dim", "--values", "1,2", "--tables", "6", *TINY)
    assert result.exit_code == 0, result.output
    assert [(s.latent_dim, s.mlp_depth) for s in encodes] == [(1, 2), (1, 1), (2, 2)]  # latent_dim=1 is mlp_depth=2
    rows = {(r["param"], r["value"]): r for r in read_rows(out)}
    copied, source = rows[("latent_dim", "1")], rows[("mlp_depth", "2")]
    assert copied["measured_as"] == "mlp_depth=2" and copied["config"] == source["config"]
    assert copied["bytes"] == source["bytes"] and copied["psnr_rgb"] == source["psnr_rgb"]
    assert rows[("latent_dim", "2")]["config"] != source["config"]
    assert (out / "latent_dim.png").exists() and (out / "mlp_depth.png").exists()
    bd = (out / "bd_rates.csv").read_text(encoding="utf-8")
    assert "latent_dim,2,1," in bd and "mlp_depth,1,2," in bd  # each value against its parameter's baseline


def test_interrupted_run_keeps_a_whole_csv_and_resumes(
    tmp_path: Path, image: Path, encodes: list, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shc.cli.encoder

    counted = shc.cli.encoder.encode_image

    def interrupted_second(*args, **kwargs):
        if len(encodes) == 1:
            raise KeyboardInterrupt
        return counted(*args, **kwargs)

    monkeypatch.setattr(shc.cli.encoder, "encode_image", interrupted_second)
    out = tmp_path / "out"
    args = [image, "-o", out, "--param", "feat_dim", "--values", "1,2", "--tables", "6", *TINY]
    result = run(*args)
    assert result.exit_code == 130
    assert "interrupted" in result.output and "sweep.csv" in result.output
    rows = read_rows(out)
    assert [(r["value"], r["log2_hashmap_size"]) for r in rows] == [("1", "6")]
    assert (out / "sweep.csv").read_bytes().endswith(b"\n")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]

    monkeypatch.setattr(shc.cli.encoder, "encode_image", counted)
    result = run(*args)
    assert result.exit_code == 0, result.output
    assert [s.feat_dim for s in encodes] == [1, 2]
    assert [r["value"] for r in read_rows(out)] == ["1", "2"]


def test_other_settings_in_the_folder_need_force(tmp_path: Path, image: Path, encodes: list) -> None:
    out = tmp_path / "out"
    assert run(image, "-o", out, "--param", "anneal", "--values", "0.95", "--tables", "6", *TINY).exit_code == 0
    other = [*TINY[:2], "--steps", "3", *TINY[4:]]
    result = run(image, "-o", out, "--param", "anneal", "--values", "0.95", "--tables", "6", *other)
    assert result.exit_code == 1
    assert "other settings" in result.output and "--force" in result.output
    assert len(encodes) == 1
    result = run(image, "-o", out, "--param", "anneal", "--values", "0.95", "--tables", "6", *other, "--force")
    assert result.exit_code == 0, result.output
    assert len(encodes) == 2 and read_rows(out)[0]["steps"] == "3"


@pytest.mark.parametrize(("options", "message"), [
    (["--param", "hidden_size", "--values", "1"], "unknown --param 'hidden_size'; choose one of latent_dim"),
    (["--param", "latent_dim", "--values", "1,x"], "--values: 'x' is not a number"),
    (["--param", "latent_dim", "--values", "9"], "latent_dim=9 is outside what the .shc format and encoder take "
                                                 "(1 .. 8)"),
    (["--param", "num_levels", "--values", "2.5"], "num_levels takes whole numbers"),
    (["--param", "mlp_depth", "--values", ","], "--values is empty"),
    (["--param", "anneal", "--values", "1.5"], "anneal=1.5 is outside"),
    (["--param", "feat_dim", "--values", "1", "--tables", "3"], "--tables: '3' is not a log2 table size in 4 .. 24"),
    (["--param", "feat_dim", "--values", "1", "--set", "feat_dim=2"], "feat_dim is the parameter being swept"),
])
def test_bad_sweep_options_exit_1_with_one_line(tmp_path: Path, image: Path, encodes: list, options: list[str],
                                                message: str) -> None:
    """Options the sweep cannot take are usage errors (exit 1, as in every shc command), before any work."""
    result = run(image, "-o", tmp_path / "out", *options, *TINY)
    assert result.exit_code == 1, result.output
    assert result.output.count("\n") == 1 and result.output.startswith("Error: ")
    assert message in result.output
    assert not encodes and not (tmp_path / "out").exists()


def test_crop_larger_than_the_image_exits_2(tmp_path: Path, image: Path, encodes: list) -> None:
    """A crop the image cannot give is a fault of this input (exit 2), found before any training."""
    result = run(image, "-o", tmp_path / "out", "--param", "feat_dim", "--values", "1", "--crop", "64x64", *TINY)
    assert result.exit_code == 2, result.output
    assert "--crop 64x64 is larger than the image (32x24)" in result.output
    assert not encodes


def test_unreadable_image_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    result = run(bad, "-o", tmp_path / "out", "--param", "feat_dim", "--values", "1", *TINY)
    assert result.exit_code == 2 and "cannot read image" in result.output


def test_two_rate_weights_are_a_usage_error(tmp_path: Path, image: Path) -> None:
    result = run(image, "-o", tmp_path / "out", "--param", "feat_dim", "--values", "1", "--lmbda", "0.01",
                 "--quality", "3", *TINY)
    assert result.exit_code == 1 and "give one rate weight" in result.output


def test_values_the_format_cannot_hold_are_refused_before_training() -> None:
    base = sw.base_settings("fast", 2, {"num_levels": 32})
    with pytest.raises(sw.SweepError, match="latent_dim=8 at 2\\^24 rows: the .shc format cannot hold it"):
        sw.plan_points(base, sw.Rate("row", 1e-4), "latent_dim", [8], [24], 20000, 20000)


def test_paper_lambda_is_converted_per_table_row() -> None:
    base = sw.base_settings("fast", 2)
    width, height = 1920, 1080
    points = sw.plan_points(base, sw.Rate("row", 1e-4), "mlp_width", [48], [13, 15, 17], width, height)
    from shc.codec.presets import level_cells

    for point in points:
        rows = sum(level_num_rows(nx, ny, point.table)[0] for nx, ny in level_cells(point.settings, width, height))
        assert point.rows == rows
        assert point.settings.lmbda == pytest.approx(1e-4 * width * height / rows)
    assert points[0].settings.lmbda > points[1].settings.lmbda > points[2].settings.lmbda  # more rows, smaller λ
    fixed = sw.plan_points(base, sw.Rate("bpp", 4e-3), "mlp_width", [48], [13, 17], width, height)
    assert [p.settings.lmbda for p in fixed] == [4e-3, 4e-3]
    swept = sw.plan_points(base, sw.Rate("bpp", 4e-3), "row_lambda", [2e-4], [15], width, height)[0]
    assert swept.settings.lmbda == pytest.approx(2e-4 * width * height / swept.rows)
    assert [s.settings.mlp_width for s in points] == [48, 48, 48] and base.num_groups == base.num_levels == 16


def test_appendix_defaults_and_value_parsing() -> None:
    base = sw.base_settings("default", None)
    assert (base.latent_dim, base.feat_dim, base.mlp_width, base.mlp_depth, base.anneal) == (1, 1, 48, 2, 0.95)
    assert sw.parse_param("MLP-Width") == "mlp_width" and sw.parse_param("levels") == "num_levels"
    assert sw.parse_values("latent_dim", "1, 2.0,4,2") == [1, 2, 4]
    assert [sw.format_value(v) for v in sw.parse_values("row_lambda", "1e-4,0.00010,2.5e-5")] == ["0.0001", "2.5e-05"]
    assert sw.parse_tables("17,13,15") == [13, 15, 17]


def test_crop_for_pixels_keeps_the_aspect_ratio() -> None:
    assert sw.crop_for_pixels(6000, 4000, 2_073_600) == (1763, 1175)
    width, height = sw.crop_for_pixels(6000, 4000, 2_073_600)
    assert width * height <= 2_073_600 and math.isclose(width / height, 1.5, rel_tol=2e-3)
    assert sw.crop_for_pixels(100, 50, 10_000) == (100, 50)
    pixels = np.arange(6 * 8 * 3, dtype=np.uint8).reshape(6, 8, 3)
    assert np.array_equal(sw.centre_crop(pixels, 4, 2), pixels[2:4, 2:6])
