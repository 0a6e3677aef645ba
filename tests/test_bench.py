"""Tests for the benchmark harness (shc.bench, shc bench): fast, synthetic images only, no shc encoder."""

from __future__ import annotations

import csv
import json
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from shc.bench.base import Codec, format_quality
from shc.bench.bdrate import bd_psnr, bd_rate
from shc.bench.classic import CLASSIC_CODECS
from shc.bench.metrics import MIN_SIDE, ms_ssim
from shc.bench.registry import make_codecs
from shc.bench.results import COLUMNS
from shc.bench.runner import run_benchmark
from shc.bench.shc_codec import ShcCodec
from shc.cli.bench import bench
from shc.metrics import psnr_db

MIDDLE_QUALITY = {"jpeg420": 50, "jpeg444": 50, "webp": 50, "avif": 50, "heic": 35, "jpeg2000": 1.0}


def smooth_image(height: int, width: int, seed: int = 0) -> np.ndarray:
    """A photo-like test image: smooth colour gradients plus mild texture."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [
        128 + 90 * np.sin(x / 9.0 + phase) * np.cos(y / 13.0 - phase) + rng.normal(0, 4, (height, width))
        for phase in (0.0, 1.0, 2.0)
    ]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


# --- classic codecs -------------------------------------------------------------------------------


def test_codec_names_list_every_codec_without_importing_them() -> None:
    import subprocess
    import sys

    from shc.bench.names import CLASSIC_CODEC_NAMES

    assert tuple(CLASSIC_CODECS) == CLASSIC_CODEC_NAMES
    # the CLI (and so `shc decode`) starts without the benchmark's codecs or runner; `shc bench` loads
    # only the names until it runs
    for command, expected in (("decode", "[]"), ("bench", "['shc.bench.names']")):
        code = ("import sys, shc.cli.main; shc.cli.main.cli.get_command(None, %r); "
                "print(sorted(m for m in sys.modules if m.startswith('shc.bench.')))" % command)
        loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
        assert loaded.strip() == expected


@pytest.mark.parametrize("name", sorted(CLASSIC_CODECS))
def test_classic_codec_round_trip(name: str) -> None:
    codec = CLASSIC_CODECS[name]
    assert isinstance(codec, Codec)
    rgb = smooth_image(48, 64)
    data = codec.encode(rgb, MIDDLE_QUALITY[name])
    decoded = codec.decode(data)
    assert decoded.shape == rgb.shape and decoded.dtype == np.uint8
    assert len(data) * 8 / (64 * 48) > 0
    assert psnr_db(rgb, decoded) > 20.0
    assert codec.name == name and "Pillow" in codec.description or "pillow-heif" in codec.description


@pytest.mark.parametrize("name", ["jpeg420", "jpeg444"])
def test_jpeg_higher_quality_more_bytes(name: str) -> None:
    codec = CLASSIC_CODECS[name]
    rgb = smooth_image(48, 64)
    sizes = [len(codec.encode(rgb, q)) for q in (10, 50, 90)]
    assert sizes == sorted(sizes) and sizes[0] < sizes[-1]


def test_jpeg_chroma_subsampling_differs() -> None:
    rgb = smooth_image(48, 64)
    assert CLASSIC_CODECS["jpeg444"].encode(rgb, 80) != CLASSIC_CODECS["jpeg420"].encode(rgb, 80)


def test_classic_rejects_non_rgb() -> None:
    with pytest.raises(ValueError, match="HxWx3 uint8"):
        CLASSIC_CODECS["jpeg420"].encode(np.zeros((8, 8), np.uint8), 50)


def test_decode_refuses_other_format() -> None:
    data = CLASSIC_CODECS["webp"].encode(smooth_image(16, 16), 50)
    with pytest.raises(OSError, match="cannot identify image file"):
        CLASSIC_CODECS["jpeg420"].decode(data)


# --- MS-SSIM --------------------------------------------------------------------------------------


def test_ms_ssim_identical_is_one() -> None:
    rgb = smooth_image(MIN_SIDE, 170)
    assert ms_ssim(rgb, rgb) == pytest.approx(1.0, abs=1e-12)


def test_ms_ssim_decreases_with_noise() -> None:
    rgb = smooth_image(170, 180)
    rng = np.random.default_rng(1)
    scores = []
    for sigma in (2, 8, 24):
        noisy = np.clip(rgb + rng.normal(0, sigma, rgb.shape), 0, 255).astype(np.uint8)
        scores.append(ms_ssim(rgb, noisy))
    assert 1.0 > scores[0] > scores[1] > scores[2] > 0.0


def test_ms_ssim_small_image_is_nan() -> None:
    rgb = smooth_image(MIN_SIDE - 1, 200)
    assert np.isnan(ms_ssim(rgb, rgb))


def test_ms_ssim_shape_mismatch() -> None:
    with pytest.raises(ValueError, match="shape mismatch"):
        ms_ssim(np.zeros((200, 200, 3)), np.zeros((200, 201, 3)))


# --- Bjøntegaard deltas ---------------------------------------------------------------------------

RATES = [0.12, 0.25, 0.5, 1.0, 2.0]
PSNRS = [27.1, 29.8, 32.9, 36.2, 39.4]


def test_bd_identical_curves_are_zero() -> None:
    assert bd_rate(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)
    assert bd_psnr(RATES, PSNRS, RATES, PSNRS) == pytest.approx(0.0, abs=1e-9)


def test_bd_rate_ten_percent_fewer_bits() -> None:
    assert bd_rate(RATES, PSNRS, [0.9 * r for r in RATES], PSNRS) == pytest.approx(-10.0, abs=1e-6)
    assert bd_rate([0.9 * r for r in RATES], PSNRS, RATES, PSNRS) == pytest.approx(100 / 9, abs=1e-6)


def test_bd_psnr_one_db_better() -> None:
    assert bd_psnr(RATES, PSNRS, RATES, [p + 1.0 for p in PSNRS]) == pytest.approx(1.0, abs=1e-9)
    assert bd_rate(RATES, PSNRS, RATES, [p + 1.0 for p in PSNRS]) < 0


def test_bd_no_overlap_is_nan_and_bad_input_raises() -> None:
    assert np.isnan(bd_rate(RATES, PSNRS, RATES, [p + 50 for p in PSNRS]))
    with pytest.raises(ValueError, match="at least 2"):
        bd_rate([1.0], [30.0], RATES, PSNRS)
    with pytest.raises(ValueError, match="> 0"):
        bd_psnr([0.0, 1.0], [30.0, 35.0], RATES, PSNRS)


# --- runner ---------------------------------------------------------------------------------------


class FakeCodec:
    """Deterministic stand-in for shc: uniform quantization, zlib-packed, counting encodes."""

    def __init__(self, name: str = "shc", qualities: tuple[float, ...] = (1, 2, 3), description: str = "fake") -> None:
        self.name = name
        self.qualities = qualities
        self.description = description
        self.encode_calls = 0

    def encode(self, rgb: np.ndarray, quality: float) -> bytes:
        self.encode_calls += 1
        step = 64 >> int(quality)
        height, width = rgb.shape[:2]
        return struct.pack("<HHB", height, width, step) + zlib.compress((rgb // step).tobytes())

    def decode(self, data: bytes) -> np.ndarray:
        height, width, step = struct.unpack("<HHB", data[:5])
        levels = np.frombuffer(zlib.decompress(data[5:]), np.uint8).reshape(height, width, 3)
        return (levels.astype(np.int32) * step + step // 2).clip(0, 255).astype(np.uint8)


def write_pngs(folder: Path, count: int, size: tuple[int, int] = (40, 30)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"img{index:02d}.png"
        Image.fromarray(smooth_image(size[1], size[0], seed=index)).save(path)
        paths.append(path)
    return paths


def read_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_runner_writes_reports_and_resumes(tmp_path: Path) -> None:
    images = write_pngs(tmp_path / "images", 2)
    published = tmp_path / "published.csv"
    published.write_text(
        "codec,bpp,psnr_rgb,source\n" + "".join(f"Other,{b},{p},test\n" for b, p in zip(RATES, PSNRS)),
        encoding="utf-8",
    )
    out = tmp_path / "out"
    fake, jpeg = FakeCodec(), CLASSIC_CODECS["jpeg420"]
    curves = run_benchmark(images, [fake, jpeg], out, progress=False, published_csv=published, command="test")

    assert fake.encode_calls == 2 * 3
    rows = read_rows(out / "per_image.csv")
    assert len(rows) == 2 * 3 + 2 * len(jpeg.qualities)
    assert tuple(rows[0]) == COLUMNS
    first = rows[0]
    assert first["codec"] == "shc" and first["image"] == "img00" and first["quality"] == "1"
    assert float(first["bpp"]) == pytest.approx(int(first["bytes"]) * 8 / (40 * 30))

    result = json.loads((out / "shc.json").read_text())
    assert result["name"] == "shc" and result["description"] == "fake"
    assert set(result["results"]) >= {"bpp", "psnr-rgb", "ms-ssim-rgb", "encoding_time", "decoding_time"}
    assert len(result["results"]["bpp"]) == 3 and result["results"]["bpp"] == sorted(result["results"]["bpp"])
    assert result["results"]["ms-ssim-rgb"] == [None, None, None]  # 40x30 is below MS-SSIM's 161 px
    per_q = [float(r["psnr_rgb"]) for r in rows if r["codec"] == "shc" and r["quality"] == "2"]
    assert curves["shc"].results["psnr-rgb"][1] == pytest.approx(np.mean(per_q))

    assert (out / "jpeg420.json").exists() and (out / "rd.png").stat().st_size > 0
    bd = read_rows(out / "bd_table.csv")
    assert [(r["anchor"], r["kind"]) for r in bd] == [("jpeg420", "measured"), ("Other", "published")]
    assert "jpeg420" in (out / "bd_table.md").read_text()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["command"] == "test" and meta["machine"]["cpu_count"]
    assert {"numpy", "pillow", "pillow-heif", "torch", "constriction"} <= set(meta["packages"])

    again = FakeCodec()
    run_benchmark(images, [again], out, progress=False)
    assert again.encode_calls == 0
    assert len(read_rows(out / "per_image.csv")) == len(rows)


def test_runner_measures_only_missing_and_drops_cut_row(tmp_path: Path) -> None:
    images = write_pngs(tmp_path / "images", 2)
    out = tmp_path / "out"
    run_benchmark(images[:1], [FakeCodec()], out, progress=False)
    csv_path = out / "per_image.csv"
    text = csv_path.read_text()
    csv_path.write_text(text[: text.rstrip().rfind(",")])  # a kill in the middle of the last row

    fake = FakeCodec(qualities=(1, 2, 3, 4))
    with pytest.warns(UserWarning, match="incomplete"):
        run_benchmark(images, [fake], out, progress=False)
    assert fake.encode_calls == 1 + 4 + 1  # the cut row, the new image, the new quality on the old image
    rows = read_rows(csv_path)
    expected = [(f"img0{i}", str(q)) for i in (0, 1) for q in (1, 2, 3, 4)]
    assert sorted((r["image"], r["quality"]) for r in rows) == expected


def test_runner_refuses_to_mix_settings(tmp_path: Path) -> None:
    images = write_pngs(tmp_path / "images", 1)
    run_benchmark(images, [FakeCodec(description="steps=100")], tmp_path / "out", progress=False)
    with pytest.raises(ValueError, match="another output folder"):
        run_benchmark(images, [FakeCodec(description="steps=200")], tmp_path / "out", progress=False)


def test_format_quality_is_canonical() -> None:
    assert format_quality(3) == format_quality(3.0) == "3"
    assert format_quality(0.25) == "0.25"


def test_shc_adapter_passes_options(monkeypatch: pytest.MonkeyPatch) -> None:
    import shc

    calls = []

    def fake_encode(image: Image.Image, **options: object) -> bytes:
        calls.append(options)
        return np.asarray(image).tobytes()

    monkeypatch.setattr(shc, "encode", fake_encode)
    monkeypatch.setattr(shc, "decode", lambda data: Image.fromarray(np.frombuffer(data, np.uint8).reshape(4, 5, 3)))
    codec = make_codecs(["shc"], [2, 5], {"preset": "fast", "steps": None, "device": "cpu", "seed": 0})[0]
    assert isinstance(codec, ShcCodec) and codec.qualities == (2, 5)
    rgb = smooth_image(4, 5)
    assert np.array_equal(codec.decode(codec.encode(rgb, 2.0)), rgb)
    assert calls == [{"quality": 2, "preset": "fast", "device": "cpu", "seed": 0}]
    assert "preset='fast'" in codec.description


def test_ngp_baseline_is_shc_without_entropy_coding() -> None:
    shc_codec, ngp = make_codecs(["shc", "ngp"], [1, 3, 5], {"preset": "fast", "steps": None}, ngp_qualities=[1, 3])
    assert (shc_codec.name, shc_codec.qualities, ngp.name, ngp.qualities) == ("shc", (1, 3, 5), "ngp", (1, 3))
    assert ngp.encode_options == {"preset": "fast", "entropy_coding": False}
    assert "entropy_coding=False" in ngp.description and "entropy_coding" not in shc_codec.description
    assert make_codecs(["ngp"], [2])[0].qualities == (2,)


def test_make_codecs_rejects_unknown() -> None:
    with pytest.raises(ValueError, match="unknown codec 'png'"):
        make_codecs(["jpeg420", "png"])


# --- CLI ------------------------------------------------------------------------------------------


def test_cli_jpeg_only_run(tmp_path: Path) -> None:
    write_pngs(tmp_path / "images", 2)
    out = tmp_path / "results"
    args = [str(tmp_path / "images"), "-o", str(out), "--codecs", "jpeg420", "--no-progress"]
    result = CliRunner().invoke(bench, args)
    assert result.exit_code == 0, result.output
    for name in ("per_image.csv", "jpeg420.json", "bd_table.md", "bd_table.csv", "rd.png", "meta.json"):
        assert (out / name).exists(), name
    assert len(read_rows(out / "per_image.csv")) == 2 * len(CLASSIC_CODECS["jpeg420"].qualities)


def test_cli_selects_images(tmp_path: Path) -> None:
    write_pngs(tmp_path / "images", 3)
    out = tmp_path / "results"
    args = [str(tmp_path / "images"), "-o", str(out), "--codecs", "jpeg444", "--images", "img02", "--no-progress"]
    assert CliRunner().invoke(bench, args).exit_code == 0
    assert {r["image"] for r in read_rows(out / "per_image.csv")} == {"img02"}


@pytest.mark.parametrize(
    ("make_args", "exit_code", "message"),
    [
        (lambda d: [str(d / "missing"), "-o", str(d / "o")], 2, "image folder not found"),
        (lambda d: [str(d / "empty"), "-o", str(d / "o")], 2, "no images"),
        (lambda d: [str(d / "images"), "-o", str(d / "o"), "--codecs", "jpeg420,png"], 1, "unknown codec 'png'"),
        (lambda d: [str(d / "images"), "-o", str(d / "o"), "--codecs", "jpeg420", "--images", "nope"], 2, "nope"),
        (lambda d: [str(d / "images"), "-o", str(d / "o"), "--qualities", "a,b"], 1, "--qualities"),
        (lambda d: [str(d / "images"), "-o", str(d / "o"), "--codecs", "webp", "--reference", "shc"], 1, "--reference"),
    ],
)
def test_cli_errors_are_one_line(tmp_path: Path, make_args, exit_code: int, message: str) -> None:
    write_pngs(tmp_path / "images", 1)
    (tmp_path / "empty").mkdir()
    result = CliRunner().invoke(bench, make_args(tmp_path))
    assert result.exit_code == exit_code
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:") and message in lines[0]
    assert not (tmp_path / "o").exists()
