"""Shared test fixtures: the sample photo, odd input images written on demand into ``tmp_path``, and the
studies beside the package loaded as modules (:func:`load_study`).

``ODD_IMAGES`` maps a case name to a writer ``write(path) -> expected``. ``expected`` is either the
``(H, W, 3)`` uint8 array that :func:`shc.images.load_rgb` must return (``ODD_TOLERANCE`` gives the
allowed per-channel error for lossy files), or a string: a fragment of the one-line error for a refused input.
"""

from __future__ import annotations

import importlib.util
import json
import struct
import sys
import zlib
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from PIL import Image

DATA_DIR = Path(__file__).parent / "data"
PARROT = DATA_DIR / "parrot_64x48.png"
STUDIES_DIR = Path(__file__).resolve().parents[1] / "studies"


def load_study(name: str) -> ModuleType:
    """``studies/NAME/run.py`` as a module (once): the studies are scripts beside the package, not in it."""
    module_name = f"study_{name}"
    if module_name not in sys.modules:
        spec = importlib.util.spec_from_file_location(module_name, STUDIES_DIR / name / "run.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # before it runs: its dataclasses look their module up
        spec.loader.exec_module(module)
    return sys.modules[module_name]

Expected = np.ndarray | str


def png_bytes(width: int, height: int, bit_depth: int = 1, color_type: int = 0, raw: bytes = b"\0" * 16) -> bytes:
    """A PNG written by hand: IHDR with the given fields, one IDAT holding ``zlib(raw)``, IEND.

    With the defaults, a 1-bit grayscale PNG that declares ``width x height`` but holds almost no data:
    a decompression bomb in a few dozen bytes (decoding it needs at least ``width * height`` bytes).
    """

    def chunk(tag: bytes, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload)) + tag + payload + struct.pack(">I", zlib.crc32(tag + payload))

    ihdr = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def _ramp(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)


def _save(image: Image.Image, path: Path, fmt: str = "PNG", **params) -> None:
    image.save(path, fmt, **params)


def _gray(path: Path) -> np.ndarray:
    gray = _ramp(3, 5)[..., 0]
    _save(Image.fromarray(gray, "L"), path)
    return np.repeat(gray[..., None], 3, axis=2)


def _rgba(path: Path) -> np.ndarray:
    rgba = np.concatenate([_ramp(4, 6), np.array([0, 1, 128, 255] * 6, np.uint8).reshape(4, 6, 1)], axis=2)
    _save(Image.fromarray(rgba, "RGBA"), path)
    return rgba[..., :3]  # alpha dropped, colors kept (also where alpha is 0), not composited


def _gray16(path: Path) -> np.ndarray:
    values = np.array([[0, 257, 32896, 65535], [255, 256, 65280, 1000]], dtype=np.uint16)
    _save(Image.fromarray(values), path)  # mode I;16, a 16-bit grayscale PNG
    gray = np.rint(values / 65535.0 * 255.0).astype(np.uint8)
    return np.repeat(gray[..., None], 3, axis=2)


def _palette(transparency: object) -> Callable[[Path], np.ndarray]:
    def write(path: Path) -> np.ndarray:
        colors = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [10, 20, 30]], np.uint8)
        index = np.array([[0, 1, 2, 3], [3, 2, 1, 0], [0, 0, 3, 3]], np.uint8)
        image = Image.fromarray(index, "P")
        image.putpalette(colors.ravel().tolist())
        params = {} if transparency is None else {"transparency": transparency}
        _save(image, path, **params)
        return colors[index]

    return write


def _cmyk_jpeg(path: Path) -> np.ndarray:
    # pure red, green and blue stripes written as CMYK ink values
    inks = np.zeros((8, 12, 4), np.uint8)
    inks[:, 0:4] = (0, 255, 255, 0)
    inks[:, 4:8] = (255, 0, 255, 0)
    inks[:, 8:12] = (255, 255, 0, 0)
    _save(Image.fromarray(inks, "CMYK"), path, "JPEG", quality=100)
    rgb = np.zeros((8, 12, 3), np.uint8)
    rgb[:, 0:4], rgb[:, 4:8], rgb[:, 8:12] = (255, 0, 0), (0, 255, 0), (0, 0, 255)
    return rgb


def _exif_rotated(path: Path) -> np.ndarray:
    stored = _ramp(2, 4)  # stored 4 wide, 2 high
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation 6: rotate 90 degrees clockwise to display
    _save(Image.fromarray(stored), path, exif=exif)
    return np.rot90(stored, k=-1)  # shown 2 wide, 4 high


def _plain(height: int, width: int) -> Callable[[Path], np.ndarray]:
    def write(path: Path) -> np.ndarray:
        rgb = _ramp(height, width, seed=height + width)
        _save(Image.fromarray(rgb), path)
        return rgb

    return write


def _bomb(side: int) -> Callable[[Path], str]:
    def write(path: Path) -> str:
        path.write_bytes(png_bytes(side, side))
        return "too large"

    return write


def _truncated(path: Path) -> str:
    data = PARROT.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return "cannot read image"


def _not_image(path: Path) -> str:
    path.write_text("this is not an image\n")
    return "cannot read image"


def _empty(path: Path) -> str:
    path.write_bytes(b"")
    return "cannot read image"


ODD_IMAGES: dict[str, Callable[[Path], Expected]] = {
    "gray_L": _gray,
    "rgba": _rgba,
    "gray_16bit": _gray16,
    "palette": _palette(None),
    "palette_transparent_index": _palette(0),
    "palette_transparent_alpha": _palette(bytes([0, 128, 255, 255])),
    "cmyk_jpeg": _cmyk_jpeg,
    "exif_orientation_6": _exif_rotated,
    "tiny_1x1": _plain(1, 1),
    "tiny_2x3": _plain(3, 2),  # W x H = 2 x 3
    "thin_1x4000": _plain(4000, 1),
    "thin_4000x1": _plain(1, 4000),
    "bomb_30000x30000": _bomb(30000),  # over twice Pillow's limit: DecompressionBombError
    "bomb_12000x12000": _bomb(12000),  # between the limit and twice it: Pillow only warns; we refuse
    "truncated_png": _truncated,
    "not_an_image": _not_image,
    "empty_file": _empty,
}
ODD_TOLERANCE = {"cmyk_jpeg": 3}
ACCEPTED = [name for name in ODD_IMAGES if not name.startswith(("bomb", "truncated", "not_an", "empty"))]
REFUSED = [name for name in ODD_IMAGES if name not in ACCEPTED]


@pytest.fixture
def odd_image(tmp_path: Path) -> Callable[[str], tuple[Path, Expected]]:
    """``odd_image(name)`` writes case ``name`` of ``ODD_IMAGES`` and returns ``(path, expected)``."""

    def make(name: str) -> tuple[Path, Expected]:
        suffix = ".jpg" if name.endswith("jpeg") else ".png"
        path = tmp_path / f"{name}{suffix}"
        return path, ODD_IMAGES[name](path)

    return make


@pytest.fixture
def no_pixel_loading(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail the test if Pillow starts decoding pixel data (``ImageFile.load``), e.g. of a bomb."""
    from PIL import ImageFile

    def refuse(self: ImageFile.ImageFile):
        msg = f"pixel data of a {self.size} image was loaded"
        raise AssertionError(msg)

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)


def json_lines(text: str) -> list[dict]:
    """The JSON lines of a batch's output (``--json``), other lines left out."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Three small PNGs for batch tests (two crops of the parrot and a flat one) in a folder of their own."""
    folder = tmp_path_factory.mktemp("photos")
    with Image.open(PARROT) as image:
        image.crop((0, 0, 32, 24)).save(folder / "a.png")
        image.crop((16, 8, 48, 40)).save(folder / "b.png")
    Image.new("RGB", (20, 10), (200, 30, 30)).save(folder / "c.png")
    return sorted(folder.glob("*.png"))
