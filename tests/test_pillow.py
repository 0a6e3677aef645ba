"""The Pillow plugin (``shc.pillow``), through Pillow's own calls: ``Image.open`` reads only the header,
``load()`` gives the normative decoder's pixels, ``thumbnail()`` renders at the reduced size (never the full
one), other formats still open, broken files raise what Pillow raises for its own formats, and
``im.save("x.shc")`` encodes (or, without torch, says how to get it).

Expected pixels always come from ``shc.decode`` / ``decode_bytes`` of the same file, never from stored hashes:
the golden files may be rewritten for a newer format version.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, UnidentifiedImageError

import shc
import shc.pillow
from shc._optional import TorchMissingError, missing_torch_message
from shc.format import constants as C
from shc.format.container import frame_section, read_file, read_header
from shc.format.decoder import DecodedImage, Synthesis, decode_bytes
from shc.format.header import head_layout

DATA = Path(__file__).parent / "data"
GOLDEN_FILES = sorted(DATA.rglob("*.shc"))  # compat/ holds files of older format versions
PARROT = DATA / "parrot_128x96_q3.shc"
SMALL_PNG = DATA / "parrot_64x48.png"
HINT = 'pip install "shc[encode]"'
HEAD_PAYLOAD_AT = C.FILE_PREFIX_BYTES + C.SECTION_TAG_BYTES + C.SECTION_LENGTH_BYTES


def resized_header(data: bytes, width: int, height: int) -> bytes:
    """The same file with another native size in HEAD (CRC re-fixed): the same continuous image, whose
    full-size decode would be ``width x height`` pixels."""
    (length,) = struct.unpack_from("<I", data, C.FILE_PREFIX_BYTES + C.SECTION_TAG_BYTES)
    payload = bytearray(data[HEAD_PAYLOAD_AT : HEAD_PAYLOAD_AT + length])
    offsets = {name: offset for name, _, offset in head_layout(read_header(data).config.num_levels, data[4])}
    struct.pack_into("<II", payload, offsets["width"], width, height)
    assert offsets["height"] == offsets["width"] + 4
    rest = data[HEAD_PAYLOAD_AT + length + C.SECTION_CRC_BYTES :]
    return data[: C.FILE_PREFIX_BYTES] + frame_section(b"HEAD", bytes(payload)) + rest


@pytest.fixture
def rendered_sizes(monkeypatch: pytest.MonkeyPatch) -> list[tuple[int, int]]:
    """Every ``(width, height)`` the numpy decoder renders during the test."""
    sizes: list[tuple[int, int]] = []
    render = Synthesis.render

    def record(self: Synthesis, width: int, height: int) -> np.ndarray:
        sizes.append((width, height))
        return render(self, width, height)

    monkeypatch.setattr(Synthesis, "render", record)
    return sizes


# ---------------------------------------------------------------------------------------------- opening


def test_registered_with_pillow() -> None:
    assert Image.EXTENSION[".shc"] == "SHC"
    assert Image.MIME["SHC"] == "image/x-shc"
    assert "SHC" in Image.OPEN and "SHC" in Image.SAVE


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_open_reads_only_the_header(path: Path, rendered_sizes: list, monkeypatch: pytest.MonkeyPatch) -> None:
    data = path.read_bytes()
    expected = shc.decode(data)
    rendered_sizes.clear()

    def no_decoding(*args: object, **kwargs: object) -> None:
        raise AssertionError("decoded at open")

    monkeypatch.setattr(shc.pillow, "decode_at", no_decoding)
    stream = io.BytesIO(data)
    with Image.open(stream) as im:
        assert (im.format, im.format_description) == ("SHC", "SHACIRA neural image")
        assert im.get_format_mimetype() == "image/x-shc"
        assert im.size == expected.size and im.mode == expected.mode
        assert im.header == read_file(data).header  # the model too, before any pixel exists
        assert stream.tell() <= shc.pillow._HEADER_BYTES < len(data)
    assert rendered_sizes == []


@pytest.mark.parametrize("path", GOLDEN_FILES, ids=lambda p: p.name)
def test_load_gives_the_decoders_pixels(path: Path) -> None:
    data = path.read_bytes()
    with Image.open(path) as im:
        fp = im.fp
        im.load()
        assert im.fp is None and fp.closed  # Pillow opened the file, so it is closed once loaded
        np.testing.assert_array_equal(np.asarray(im), np.asarray(shc.decode(data)))
        parsed = read_file(data)
        for key in ("icc_profile", "exif"):  # format version 5 metadata (None before it, and when absent)
            assert im.info.get(key) == getattr(parsed, key, None)


def test_a_stream_given_by_the_caller_stays_open() -> None:
    stream = io.BytesIO(PARROT.read_bytes())
    with Image.open(stream) as im:
        im.load()
    assert not stream.closed


def test_other_formats_still_open() -> None:
    with Image.open(SMALL_PNG) as im:
        assert im.format == "PNG" and im.size == (64, 48)


def test_recognised_by_content_not_by_name(tmp_path: Path) -> None:
    named_shc = tmp_path / "really.shc"
    named_shc.write_bytes(SMALL_PNG.read_bytes())
    with Image.open(named_shc) as im:
        assert im.format == "PNG"
    named_png = tmp_path / "really.png"
    named_png.write_bytes(PARROT.read_bytes())
    with Image.open(named_png) as im:
        assert im.format == "SHC"


@pytest.mark.parametrize("data", [b"", b"SHC", b"not an image at all, just some text"], ids=["empty", "short", "text"])
def test_non_shc_input_is_unidentified(data: bytes) -> None:
    with pytest.raises(UnidentifiedImageError):
        Image.open(io.BytesIO(data))


def test_asked_for_shc_only_a_png_is_unidentified() -> None:
    with pytest.raises(UnidentifiedImageError):
        Image.open(SMALL_PNG, formats=["SHC"])


def _broken_header_cases() -> dict[str, bytes]:
    data = PARROT.read_bytes()
    flipped = bytearray(data)
    flipped[HEAD_PAYLOAD_AT] ^= 0x01  # width: the HEAD CRC no longer matches
    return {
        "unknown_version": data[:4] + bytes([99]) + data[5:],
        "head_crc": bytes(flipped),
        "cut_in_head": data[: HEAD_PAYLOAD_AT + 3],
        "wrong_tag": data[: C.FILE_PREFIX_BYTES] + b"WGHT" + data[C.FILE_PREFIX_BYTES + 4 :],
    }


@pytest.mark.parametrize("case", sorted(_broken_header_cases()))
def test_broken_header_is_unidentified(case: str, monkeypatch: pytest.MonkeyPatch) -> None:
    # what Pillow does with its own plugins: _open raises SyntaxError, Image.open tries the other formats
    # and raises UnidentifiedImageError (an OSError), with the plugin's reason as a warning if asked
    bad = _broken_header_cases()[case]
    with pytest.raises(shc.ShcFormatError) as reason:
        read_header(bad)
    monkeypatch.setattr(Image, "WARN_POSSIBLE_FORMATS", True)
    with warnings.catch_warnings(record=True) as caught, pytest.raises(UnidentifiedImageError):
        warnings.simplefilter("always")
        Image.open(io.BytesIO(bad))
    messages = [str(w.message) for w in caught]
    assert any(m.startswith("SHC opening failed. broken SHC file") and str(reason.value) in m for m in messages)


def _broken_body_cases() -> dict[str, bytes]:
    data = PARROT.read_bytes()
    flipped = bytearray(data)
    flipped[-C.SECTION_CRC_BYTES - 1] ^= 0x10  # last payload byte of LATN
    return {"truncated": data[:-7], "latents_crc": bytes(flipped), "trailing_bytes": data + b"\0"}


@pytest.mark.parametrize("case", sorted(_broken_body_cases()))
def test_broken_body_fails_at_load_with_an_oserror(case: str) -> None:
    bad = _broken_body_cases()[case]
    with pytest.raises(shc.ShcFormatError) as reason:
        read_file(bad)
    with Image.open(io.BytesIO(bad)) as im:  # the header is intact: open succeeds, lazily
        assert im.size == (128, 96)
        with pytest.raises(OSError, match="broken SHC file") as error:
            im.load()
    assert str(reason.value) in str(error.value)
    assert isinstance(error.value.__cause__, shc.ShcFormatError)


def test_decoded_channels_must_match_the_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    four = lambda fp, size, reduced: (DecodedImage(np.zeros((*size[::-1], 4), np.uint8)), 6, 100)  # noqa: E731
    monkeypatch.setattr(shc.pillow, "decode_at", four)
    with Image.open(PARROT) as im, pytest.raises(OSError, match="4 channels, its header says RGB"):
        im.load()


def test_icc_profile_and_exif_of_the_decoded_file_reach_info(monkeypatch: pytest.MonkeyPatch) -> None:
    decode_at = shc.pillow.decode_at

    def with_metadata(fp, size, reduced):
        decoded, levels, bytes_read = decode_at(fp, size, reduced)
        return DecodedImage(decoded.pixels, icc_profile=b"fake icc", exif=b"Exif\0\0fake"), levels, bytes_read

    monkeypatch.setattr(shc.pillow, "decode_at", with_metadata)
    with Image.open(PARROT) as im:
        assert "icc_profile" not in im.info
        im.load()
        assert im.info["icc_profile"] == b"fake icc" and im.info["exif"] == b"Exif\0\0fake"


def test_register_opener_is_lazy_and_enough() -> None:
    code = (
        "import sys, shc\n"
        "assert 'PIL.Image' not in sys.modules and 'shc.pillow' not in sys.modules, 'import shc is not cheap'\n"
        "shc.register_opener()\n"
        "from PIL import Image\n"
        f"im = Image.open({str(PARROT)!r})\n"
        "print(im.format, im.size, 'torch' in sys.modules)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "SHC (128, 96) False"


# ---------------------------------------------------------------------------------------------- draft


@pytest.mark.parametrize(
    ("requested", "chosen"),
    [
        ((64, 64), (86, 64)),  # the height binds; the width rounds up from 85.3
        ((64, 10), (64, 48)),  # the width binds
        ((32, 24), (32, 24)),  # exactly half
        ((1, 1), (2, 1)),
        ((127, 95), (127, 96)),
        ((128, 50), None),  # the native width is the closest size that covers 128: nothing changes
        ((500, 500), None),
    ],
)
def test_draft_picks_the_smallest_covering_size(requested: tuple[int, int], chosen: tuple[int, int] | None) -> None:
    with Image.open(PARROT) as im:
        result = im.draft(None, requested)
        if chosen is None:
            assert result is None and im.size == (128, 96)
        else:
            assert result == ("RGB", (0, 0, *chosen)) and im.size == chosen


def test_draft_covers_the_request_and_keeps_the_aspect() -> None:
    native = (128, 96)
    with Image.open(PARROT) as im:
        for want_w in range(1, 140, 3):
            for want_h in range(1, 110, 5):
                im.draft("RGB", (want_w, want_h))
                width, height = im.size
                assert width <= native[0] and height <= native[1]
                if (width, height) != native:
                    assert width >= want_w and height >= want_h
                    # one side is the request, the other the smallest that keeps the native aspect
                    assert (width == want_w and height == -(-96 * want_w // 128)) or (
                        height == want_h and width == -(-128 * want_h // 96)
                    )
                else:
                    assert want_w >= native[0] or want_h >= native[1] or (want_w, want_h) == native


def test_draft_after_load_changes_nothing() -> None:
    with Image.open(PARROT) as im:
        im.load()
        assert im.draft(None, (32, 24)) is None and im.size == (128, 96)


def test_draft_then_load_renders_at_the_draft_size(rendered_sizes: list) -> None:
    data = PARROT.read_bytes()
    with Image.open(PARROT) as im:
        im.draft("RGB", (40, 40))
        im.load()
        assert rendered_sizes == [(54, 40)]
        np.testing.assert_array_equal(np.asarray(im), decode_bytes(data, size=(54, 40)))


@pytest.mark.parametrize(
    ("scale", "box", "rendered", "final"),
    [
        (4, (64, 64), (171, 128), (64, 48)),  # a 512x384 file: Pillow asks draft for 2x the box (reducing_gap)
        (1, (32, 32), (86, 64), (32, 24)),
        (1, (64, 64), (128, 96), (64, 48)),  # 2x the box covers the native size: rendered natively, then resized
    ],
)
def test_thumbnail_renders_at_the_reduced_size(
    scale: int, box: tuple[int, int], rendered: tuple[int, int], final: tuple[int, int], rendered_sizes: list
) -> None:
    data = resized_header(PARROT.read_bytes(), 128 * scale, 96 * scale) if scale != 1 else PARROT.read_bytes()
    with Image.open(io.BytesIO(data)) as im:
        assert im.size == (128 * scale, 96 * scale)
        im.thumbnail(box)
        assert im.size == final
        assert rendered_sizes == [rendered]  # one render, never the full size unless that is the draft size
        reduced = Image.fromarray(decode_bytes(data, size=rendered))
        expected = reduced.resize(final, Image.Resampling.BICUBIC, box=(0, 0, *rendered), reducing_gap=2.0)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(expected))


def test_a_big_header_does_not_mean_a_big_decode(rendered_sizes: list) -> None:
    data = resized_header(PARROT.read_bytes(), 4000, 3000)  # a full decode: 12 million pixels
    with Image.open(io.BytesIO(data)) as im:
        im.draft("RGB", (100, 100))
        im.load()
        assert im.size == (134, 100)
    assert rendered_sizes == [(134, 100)]


def test_pillows_decompression_bomb_check_applies_to_the_native_size(rendered_sizes: list) -> None:
    data = resized_header(PARROT.read_bytes(), 20000, 15000)  # 300 M pixels, over twice MAX_IMAGE_PIXELS
    with pytest.raises(Image.DecompressionBombError):
        Image.open(io.BytesIO(data))
    assert rendered_sizes == []


# ---------------------------------------------------------------------------------------------- saving


def test_save_round_trip(tmp_path: Path) -> None:
    options = {"preset": "fast", "quality": 1, "steps": 20}
    with Image.open(SMALL_PNG) as source:
        source.save(tmp_path / "x.shc", **options)  # format from the extension
        stream = io.BytesIO()
        source.save(stream, format="SHC", optimize=True, **options)  # a generic option is ignored
        expected = shc.encode(source, **options)
    assert (tmp_path / "x.shc").read_bytes() == stream.getvalue() == expected
    with Image.open(tmp_path / "x.shc") as im:
        assert im.format == "SHC" and im.size == (64, 48)
        np.testing.assert_array_equal(np.asarray(im), np.asarray(shc.decode(expected)))


@pytest.mark.skipif(C.FORMAT_VERSION < 5, reason="alpha and ICC profiles in .shc files come with format version 5")
def test_save_and_open_keep_alpha_and_the_icc_profile(tmp_path: Path) -> None:
    from PIL import ImageCms

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    with Image.open(SMALL_PNG) as source:
        rgba = source.convert("RGBA")
    rgba.putalpha(Image.linear_gradient("L").resize(rgba.size))
    rgba.info["icc_profile"] = icc
    rgba.save(tmp_path / "a.shc", preset="fast", quality=1, steps=20)
    data = (tmp_path / "a.shc").read_bytes()
    with Image.open(tmp_path / "a.shc") as im:
        assert im.mode == "RGBA"
        im.load()
        assert im.info["icc_profile"] == icc
        np.testing.assert_array_equal(np.asarray(im), np.asarray(shc.decode(data)))


def test_save_with_a_bad_option_leaves_no_file(tmp_path: Path) -> None:
    with Image.open(SMALL_PNG) as source, pytest.raises(ValueError, match="preset"):
        source.save(tmp_path / "x.shc", preset="no-such-preset", steps=1)
    assert not (tmp_path / "x.shc").exists()


def test_save_without_torch_names_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def missing() -> None:
        raise TorchMissingError(missing_torch_message())

    monkeypatch.setattr(shc.pillow, "load_encoder", missing)
    with Image.open(SMALL_PNG) as source, pytest.raises(OSError, match="encoding needs PyTorch") as error:
        source.save(tmp_path / "x.shc")
    assert HINT in str(error.value)
    assert not (tmp_path / "x.shc").exists()  # Image.save removes the file it created


def test_plugin_where_torch_is_not_installed(tmp_path: Path) -> None:
    # sys.modules["torch"] = None: what an environment without torch looks like to importlib
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "import numpy as np, shc, shc.pillow\n"
        "from PIL import Image\n"
        f"im = Image.open({str(PARROT)!r}); im.thumbnail((40, 40)); print(im.size)\n"
        f"im = Image.open({str(PARROT)!r}); im.load()\n"
        f"assert np.array_equal(np.asarray(im), np.asarray(shc.decode(open({str(PARROT)!r}, 'rb').read())))\n"
        "try:\n"
        "    im.save('x.shc')\n"
        "except OSError as error:\n"
        "    print(type(error).__name__, error)\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    size, error = result.stdout.strip().splitlines()
    assert size == "(40, 30)"
    assert error.startswith("OSError encoding needs PyTorch") and HINT in error
    assert not (tmp_path / "x.shc").exists()
