"""Tests for reading input images (shc.images.load_rgb): every odd input becomes 8-bit RGB or one clear error."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ACCEPTED, ODD_TOLERANCE, PARROT, REFUSED, png_bytes
from PIL import Image

from shc.images import ImageInputError, load_rgb


def assert_rgb(actual: np.ndarray, expected: np.ndarray, tolerance: int = 0) -> None:
    assert actual.dtype == np.uint8
    assert actual.flags.c_contiguous
    assert actual.shape == expected.shape
    assert int(np.abs(actual.astype(int) - expected.astype(int)).max()) <= tolerance


@pytest.mark.parametrize("name", ACCEPTED)
def test_accepted_inputs_from_path_and_bytes(odd_image, name):
    path, expected = odd_image(name)
    tolerance = ODD_TOLERANCE.get(name, 0)
    assert_rgb(load_rgb(path), expected, tolerance)
    assert_rgb(load_rgb(str(path)), expected, tolerance)
    assert_rgb(load_rgb(path.read_bytes()), expected, tolerance)


@pytest.mark.parametrize("name", REFUSED)
def test_refused_inputs_raise_one_line(odd_image, name):
    path, fragment = odd_image(name)
    for source in (path, path.read_bytes()):
        with pytest.raises(ImageInputError, match=fragment) as info:
            load_rgb(source)
        assert "\n" not in str(info.value)


def test_odd_images_are_what_they_claim(odd_image):
    """Guard against the fixtures silently writing something easier than intended."""
    expected_modes = {
        "gray_L": "L",
        "rgba": "RGBA",
        "gray_16bit": "I;16",
        "palette": "P",
        "palette_transparent_index": "P",
        "palette_transparent_alpha": "P",
        "cmyk_jpeg": "CMYK",
    }
    for name, mode in expected_modes.items():
        path, _ = odd_image(name)
        with Image.open(path) as image:
            assert image.mode == mode, name
            if name.startswith("palette_transparent"):
                assert "transparency" in image.info
    path, _ = odd_image("exif_orientation_6")
    with Image.open(path) as image:
        assert image.size == (4, 2)
        assert image.getexif()[0x0112] == 6
    assert load_rgb(path).shape == (4, 2, 3)  # width and height swapped


@pytest.mark.parametrize("side", [30000, 12000])
def test_decompression_bomb_is_refused_before_decoding(tmp_path, no_pixel_loading, side):
    path = tmp_path / "bomb.png"
    path.write_bytes(png_bytes(side, side))
    assert path.stat().st_size < 100
    with pytest.raises(ImageInputError, match=f"too large.*{side * side}"):
        load_rgb(path)
    with pytest.raises(AssertionError, match="pixel data"):  # the spy is live: a normal image trips it
        load_rgb(PARROT)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageInputError, match="no such file"):
        load_rgb(tmp_path / "missing.png")
    with pytest.raises(ImageInputError, match="is a directory"):
        load_rgb(tmp_path)


@pytest.mark.parametrize("length", [0, 8, 33, 100, 1000, -100])
def test_truncated_png_at_several_lengths(length):
    data = PARROT.read_bytes()[:length]
    with pytest.raises(ImageInputError, match="cannot read image"):
        load_rgb(data)


def test_pil_image_and_array_inputs():
    rgb = np.asarray(Image.open(PARROT).convert("RGB"))
    assert_rgb(load_rgb(Image.open(PARROT)), rgb)
    assert_rgb(load_rgb(rgb), rgb)
    non_contiguous = rgb[:, ::2]
    assert_rgb(load_rgb(non_contiguous), np.ascontiguousarray(non_contiguous))


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 4), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
    ],
    ids=["2d", "rgba", "float", "empty"],
)
def test_bad_arrays_are_refused(array):
    with pytest.raises(ImageInputError, match="uint8"):
        load_rgb(array)


def test_sixteen_bit_rgb_png_keeps_the_high_byte():
    # 1x1, 16 bits per sample, color type 2 (RGB): filter byte 0, then big-endian samples
    raw = b"\0" + np.array([0, 65535, 32896], ">u2").tobytes()
    data = png_bytes(1, 1, bit_depth=16, color_type=2, raw=raw)
    assert_rgb(load_rgb(data), np.array([[[0, 255, 128]]], np.uint8))
