"""Streamed output and region decode: the strip-by-strip PNG writer, ``Synthesis.render_strips``,
``shc decode --crop``, and that a decode failing halfway leaves no output."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

import shc
from shc.cli.main import cli
from shc.format.container import read_file
from shc.format.decoder import Synthesis, decode_bytes
from shc.format.entropy import file_latents
from shc.pngstream import write_png

DATA = Path(__file__).parent / "data"
GOLDEN = DATA / "parrot_128x96_q3.shc"
P3 = DATA / "parrot_p3_64x48_q1.shc"
RGBA = DATA / "parrot_rgba_64x48_q3.shc"


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def strips_of(image: np.ndarray, rows: int):
    for top in range(0, image.shape[0], rows):
        yield image[top : top + rows]


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("rows", [1, 7, 50])
def test_png_round_trip(channels, rows):
    image = np.random.default_rng(channels * 100 + rows).integers(0, 256, (50, 33, channels), dtype=np.uint8)
    buffer = io.BytesIO()
    write_png(buffer, strips_of(image, rows), 33, 50, channels)
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        decoded.load()
        back = np.asarray(decoded).reshape(50, 33, channels)
    assert np.array_equal(back, image)


def test_png_carries_the_icc_profile_and_exif():
    icc = (DATA / "display_p3.icc").read_bytes()
    exif = Image.Exif()
    exif[0x010F] = "shc test camera"  # Make
    image = np.full((4, 5, 3), 77, np.uint8)
    buffer = io.BytesIO()
    write_png(buffer, [image], 5, 4, 3, icc_profile=icc, exif=b"Exif\x00\x00" + exif.tobytes())
    with Image.open(io.BytesIO(buffer.getvalue())) as decoded:
        assert decoded.info["icc_profile"] == icc
        assert decoded.getexif()[0x010F] == "shc test camera"


def test_png_refuses_strips_that_do_not_fit():
    with pytest.raises(ValueError, match="does not fit"):
        write_png(io.BytesIO(), [np.zeros((2, 4, 3), np.uint8)], 5, 2, 3)
    with pytest.raises(ValueError, match="rows for a PNG"):
        write_png(io.BytesIO(), [np.zeros((2, 5, 3), np.uint8)], 5, 3, 3)


def test_a_failing_producer_stops_the_writer():
    def strips():
        yield np.zeros((2, 5, 3), np.uint8)
        raise RuntimeError("render failed")

    with pytest.raises(RuntimeError, match="render failed"):
        write_png(io.BytesIO(), strips(), 5, 4, 3)


def test_a_failing_output_stops_the_producer():
    class Full(io.BytesIO):
        def write(self, data):
            if self.tell() > 100:
                raise OSError("disk full")
            return super().write(data)

    produced = []

    def strips():
        for _ in range(1000):
            produced.append(1)
            yield np.random.default_rng(len(produced)).integers(0, 256, (8, 64, 3), dtype=np.uint8)

    with pytest.raises(OSError, match="disk full"):
        write_png(Full(), strips(), 64, 8000, 3)
    assert len(produced) < 1000


@pytest.mark.parametrize("path", [GOLDEN, P3, RGBA], ids=lambda p: p.name)
@pytest.mark.parametrize(("size", "box"), [((128, 96), (10, 5, 70, 50)), ((300, 200), (0, 150, 300, 200)),
                                           ((31, 17), (3, 0, 4, 17))])
def test_render_strips_and_regions_are_the_full_rendering(path, size, box):
    parsed = read_file(path.read_bytes())
    synthesis = Synthesis(parsed, file_latents(parsed))
    width, height = size
    full = synthesis.render(width, height)
    strips = list(synthesis.render_strips(width, height))
    assert [top for top, _ in strips] == sorted(top for top, _ in strips)
    assert np.array_equal(np.concatenate([s for _, s in strips]), full)
    left, top, right, bottom = box
    assert np.array_equal(synthesis.render(width, height, box), full[top:bottom, left:right])
    with pytest.raises(ValueError, match="not inside"):
        synthesis.render(width, height, (0, 0, width + 1, height))


@pytest.mark.parametrize("args", [[], ["--scale", "2.5"], ["--size", "50x40"]])
def test_decode_crop_is_the_region_of_the_full_decode(tmp_path, args):
    full_png, crop_png = tmp_path / "full.png", tmp_path / "crop.png"
    assert invoke("decode", GOLDEN, "-o", full_png, *args).exit_code == 0
    result = invoke("decode", GOLDEN, "-o", crop_png, *args, "--crop", "3,4,20,30")
    assert result.exit_code == 0, result.output
    full, crop = np.asarray(Image.open(full_png)), np.asarray(Image.open(crop_png))
    assert np.array_equal(crop, full[4:34, 3:23])


@pytest.mark.parametrize(
    ("args", "code", "fragment"),
    [
        (["--crop", "0,0,129,10"], 1, "not inside"),
        (["--crop", "1,2,3"], 1, "X,Y,W,H"),
        (["--crop", "0,0,0,5"], 1, "W, H >= 1"),
        (["--crop", "0,0,100,90", "--max-pixels", "1000"], 2, "--max-pixels"),
    ],
)
def test_decode_crop_errors(tmp_path, args, code, fragment):
    result = invoke("decode", GOLDEN, "-o", tmp_path / "x.png", *args)
    assert result.exit_code == code, result.output
    assert fragment in result.stderr
    assert not list(tmp_path.iterdir())


def test_crop_of_a_huge_scale_renders_only_the_crop(tmp_path):
    """--scale 1000 would be 128000 x 96000 pixels; a 16 x 16 crop of it is allowed and cheap."""
    result = invoke("decode", GOLDEN, "-o", tmp_path / "x.png", "--scale", "1000", "--crop", "64000,48000,16,16")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "x.png").size == (16, 16)


def test_streamed_png_keeps_metadata_and_alpha(tmp_path):
    out = tmp_path / "p3.png"
    assert invoke("decode", P3, "-o", out).exit_code == 0
    parsed = read_file(P3.read_bytes())
    with Image.open(out) as image:
        assert image.mode == "RGB"
        assert image.info["icc_profile"] == parsed.icc_profile
        assert image.getexif().get(0x010F) == "shc golden file"  # the EXIF block came along (its Make tag)
        np.testing.assert_array_equal(np.asarray(image), decode_bytes(P3.read_bytes()))
    rgba = decode_bytes(RGBA.read_bytes())
    assert rgba.shape == (48, 64, 4)
    assert np.count_nonzero((rgba[..., 3] > 0) & (rgba[..., 3] < 255)) > 100  # partial alpha: a real mix
    out = tmp_path / "rgba.png"
    assert invoke("decode", RGBA, "-o", out).exit_code == 0
    with Image.open(out) as image:
        assert image.mode == "RGBA"
        np.testing.assert_array_equal(np.asarray(image), rgba)  # straight alpha, colours untouched
    flat = tmp_path / "flat.png"
    assert invoke("decode", RGBA, "-o", flat, "--background", "#0080ff").exit_code == 0
    # straight alpha over (0, 128, 255), rounded to nearest: round((c a + b (255 - a)) / 255)
    alpha = rgba[..., 3:].astype(np.float64)
    expected = np.rint((rgba[..., :3] * alpha + np.array([0, 128, 255]) * (255 - alpha)) / 255).astype(np.uint8)
    with Image.open(flat) as image:
        assert image.mode == "RGB"
        np.testing.assert_array_equal(np.asarray(image), expected)


def test_a_decode_failing_halfway_leaves_no_output(tmp_path, monkeypatch):
    def failing(self, width, height, box=None):
        yield 0, np.zeros((1, width, self.header.config.channels), np.uint8)
        raise KeyboardInterrupt

    monkeypatch.setattr(Synthesis, "render_strips", failing)
    out = tmp_path / "x.png"
    result = invoke("decode", GOLDEN, "-o", out)
    assert result.exit_code == 130
    assert list(tmp_path.iterdir()) == []
