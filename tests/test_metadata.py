"""Colour profiles and EXIF (format version 5, META section): kept from the input, carried by the file,
attached to the decoded image; ``strip`` drops them; a malformed META is a clean :class:`ShcFormatError`.

The wide-gamut profile is ``tests/data/display_p3.icc`` (Display P3, made by ``tests/data/display_p3.py``);
a Display P3 colour shown as sRGB would look duller, which is what keeping the profile prevents.
"""

from __future__ import annotations

import io
import runpy
import struct
import tracemalloc
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageCms

from shc.format import constants as C
from shc.format.container import read_file, write_file
from shc.format.decoder import decode_bytes, decode_image
from shc.format.entropy import encode_latents, histogram_tables
from shc.format.errors import ShcFormatError
from shc.format.header import Header, ModelConfig
from shc.format.metadata import metadata_payload, read_metadata
from shc.format.weights import QuantizedWeights
from shc.images import ImageInputError, SourceImage, load_image, save_image_bytes
from shc.tools.fuzz import random_weights

DATA = Path(__file__).parent / "data"
P3 = (DATA / "display_p3.icc").read_bytes()
P3_GOLDEN = DATA / "parrot_p3_64x48_q1.shc"
ORIENTATION, MAKE = ExifTags.Base.Orientation, ExifTags.Base.Make


def exif_bytes(orientation: int | None = None, make: str = "shc test") -> bytes:
    exif = Image.Exif()
    if orientation is not None:
        exif[ORIENTATION] = orientation
    exif[MAKE] = make
    return exif.tobytes()


def frame(tag: bytes, payload: bytes) -> bytes:
    return tag + struct.pack("<I", len(payload)) + payload + struct.pack("<I", zlib.crc32(tag + payload))


def _parts(data: bytes) -> tuple[list[tuple[bytes, bytes]], bytes]:
    """The sections, HEAD to LATN, and the latent segments that follow LATN (SPEC §1, version 7)."""
    pos, out = C.FILE_PREFIX_BYTES, []
    while pos < len(data):
        (length,) = struct.unpack_from("<I", data, pos + 4)
        out.append((data[pos : pos + 4], data[pos + 8 : pos + 8 + length]))
        pos += 12 + length
        if out[-1][0] == b"LATN":
            break
    return out, data[pos:]


def sections_of(data: bytes) -> list[tuple[bytes, bytes]]:
    return _parts(data)[0]


def segments_of(data: bytes) -> bytes:
    """The latent segments after LATN, as one run of bytes."""
    return _parts(data)[1]


def with_meta(data: bytes, meta: bytes | None, version: int = C.FORMAT_VERSION) -> bytes:
    """A file's sections with its META replaced (None: left out), framed by hand; the segments kept."""
    rest = [(tag, payload) for tag, payload in sections_of(data) if tag != b"META"]
    if meta is not None:
        rest.insert(1, (b"META", meta))
    return C.MAGIC + bytes([version]) + b"".join(frame(tag, payload) for tag, payload in rest) + segments_of(data)


def entry(key: bytes, value: bytes, length: int | None = None) -> bytes:
    return key + struct.pack("<I", len(value) if length is None else length) + value


# ---------------------------------------------------------------------------------------------- the test profile


def test_display_p3_profile_is_valid_and_regenerates() -> None:
    assert runpy.run_path(str(DATA / "display_p3.py"))["profile"]() == P3  # the script makes the committed bytes
    profile = ImageCms.ImageCmsProfile(io.BytesIO(P3))
    assert ImageCms.getProfileDescription(profile).strip() == "Display P3 (shc test profile)"
    assert P3[36:40] == b"acsp" and P3[16:20] == b"RGB " and struct.unpack(">I", P3[:4])[0] == len(P3)
    # P3 -> sRGB through littlecms against the same conversion computed here: linear P3 -> XYZ -> linear sRGB
    p3 = np.array([[[128, 128, 128], [180, 120, 100], [60, 140, 200], [255, 0, 0]]], np.uint8)
    got = np.asarray(ImageCms.profileToProfile(Image.fromarray(p3), profile, ImageCms.createProfile("sRGB")))

    def to_xyz(primaries):
        xyz = np.stack([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries], axis=1)
        white = np.array([0.3127 / 0.3290, 1.0, (1 - 0.3127 - 0.3290) / 0.3290])
        return xyz * np.linalg.solve(xyz, white)

    p3_to_srgb = np.linalg.solve(to_xyz([(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]),
                                 to_xyz([(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)]))
    v = p3.astype(float) / 255
    linear = np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4) @ p3_to_srgb.T
    linear = np.clip(linear, 0, 1)
    expected = 255 * np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    assert np.abs(got - expected).max() <= 2.0
    assert got[0, 0].tolist() == [128, 128, 128] and got[0, 1, 0] > 185  # same white and grey; more saturated red


# ---------------------------------------------------------------------------------------------- the file


@dataclass(frozen=True)
class Small:
    header: Header
    weights: QuantizedWeights
    tables: tuple
    words: np.ndarray
    data: bytes  # without metadata


def _small_file(**metadata: bytes) -> tuple[Small, bytes]:
    """A valid 20 x 12 file (random weights and latents), without and with ``metadata``."""
    rng = np.random.default_rng(0)
    header = Header(20, 12, ModelConfig(num_levels=1, log2_hashmap_size=8, mlp_width=4, mlp_depth=1), ((6, 5),))
    latents = [rng.integers(-2, 3, (header.total_latents, 1)).astype(np.int32)]
    tables = histogram_tables(header, latents)
    words = encode_latents(header, tables, latents)
    weights = random_weights(rng, header)
    plain = Small(header, weights, tables, words, write_file(header, weights, tables, words))
    return plain, write_file(header, weights, tables, words, **metadata)


def test_icc_and_exif_round_trip_through_a_file() -> None:
    exif = exif_bytes()
    built, data = _small_file(icc_profile=P3, exif=exif)
    plain = built.data
    parsed = read_file(data)
    assert parsed.icc_profile == P3 and parsed.exif == exif
    # SPEC §2a: META right after HEAD, entries ICCP then EXIF, each key, u32 length, bytes
    meta = entry(b"ICCP", P3) + entry(b"EXIF", exif)
    assert [tag for tag, _ in sections_of(data)] == [b"HEAD", b"META", b"WGHT", b"TABL", b"LATN"]
    assert segments_of(data) == segments_of(plain) != b""  # the latent segments follow LATN, unchanged
    assert data == with_meta(plain, meta)
    assert len(data) == len(plain) + C.SECTION_FRAME_BYTES + len(meta)
    assert parsed.section_bytes["metadata"] == C.SECTION_FRAME_BYTES + len(meta)
    assert sum(parsed.section_bytes.values()) == len(data)
    np.testing.assert_array_equal(decode_bytes(data), decode_bytes(plain))  # metadata never changes pixels
    decoded = decode_image(data)
    assert decoded.icc_profile == P3 and decoded.exif == exif and decoded.channels == 3
    # read back, written again: the same bytes
    again = write_file(parsed.header, parsed.weights, parsed.tables, parsed.latent_segments,
                       icc_profile=parsed.icc_profile, exif=parsed.exif)
    assert again == data
    # one entry alone
    only_exif = read_file(with_meta(plain, entry(b"EXIF", exif)))
    assert only_exif.icc_profile is None and only_exif.exif == exif


def test_no_metadata_costs_nothing() -> None:
    built, data = _small_file()
    assert data == built.data and b"META" not in [tag for tag, _ in sections_of(data)]
    parsed = read_file(data)
    assert parsed.icc_profile is None and parsed.exif is None and "metadata" not in parsed.section_bytes
    assert decode_image(data).icc_profile is None


def test_golden_file_carries_the_display_p3_profile() -> None:
    parsed = read_file(P3_GOLDEN.read_bytes())
    assert parsed.icc_profile == P3
    exif = Image.Exif()
    exif.load(parsed.exif)
    assert exif[MAKE] == "shc golden file" and exif.get(ORIENTATION, 1) == 1  # orientation applied at encode
    assert (parsed.header.width, parsed.header.height) == (48, 64)  # stored 64 x 48 with Orientation 6


EXIF = exif_bytes()
MALFORMED_META = {
    # name: (META payload, message pattern)
    "empty": (b"", "META section has no entries"),
    "unknown_key": (entry(b"XMP ", b"<x/>"), r"unknown key b'XMP '"),
    "lowercase_key": (entry(b"iccp", P3), r"unknown key b'iccp'"),
    "duplicate": (entry(b"EXIF", EXIF) + entry(b"EXIF", EXIF), "key EXIF occurs twice"),
    "out_of_order": (entry(b"EXIF", EXIF) + entry(b"ICCP", P3), "key ICCP out of order"),
    "zero_length": (entry(b"EXIF", b""), r"EXIF entry declares 0 bytes, allowed 1\.\.16777216"),
    "over_the_limit": (entry(b"ICCP", P3, C.MAX_META_ENTRY_BYTES + 1), r"declares 16777217 bytes"),
    "u32_max": (entry(b"ICCP", P3, 0xFFFFFFFF), r"declares 4294967295 bytes"),
    "past_the_end": (entry(b"ICCP", P3, len(P3) + 1), r"META section: truncated while reading ICCP entry"),
    "short_header": (entry(b"EXIF", EXIF) + b"ICC", r"META section: truncated while reading entry key"),
    "trailing_bytes": (entry(b"EXIF", EXIF) + b"ICCP\x01\x00", r"truncated while reading b'ICCP' entry length"),
    "icc_no_signature": (entry(b"ICCP", P3[:36] + b"xxxx" + P3[40:]), "ICCP entry is not an ICC profile"),
    "icc_too_short": (entry(b"ICCP", P3[:127]), "ICCP entry is not an ICC profile"),
    "exif_no_prefix": (entry(b"EXIF", EXIF[6:]), r"EXIF entry does not start with Exif\\0\\0"),
    "exif_not_tiff": (entry(b"EXIF", b"Exif\0\0JUNKJUNK"), r"EXIF entry does not start with Exif\\0\\0"),
}


@pytest.mark.parametrize("case", MALFORMED_META)
def test_malformed_meta_is_a_clean_error(case: str) -> None:
    payload, match = MALFORMED_META[case]
    data = with_meta(_small_file()[1], payload)
    tracemalloc.start()
    try:
        with pytest.raises(ShcFormatError, match=match):
            read_file(data)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2 * len(data) + (1 << 20)  # declared lengths are checked before anything is read
    with pytest.raises(ShcFormatError, match=match):
        read_metadata(payload)


def test_meta_in_the_wrong_place_or_version() -> None:
    built, data = _small_file(exif=EXIF)
    sections = sections_of(data)
    meta = dict(sections)[b"META"]
    others = [s for s in sections if s[0] != b"META"]

    segments = segments_of(data)

    def assemble(order, version=C.FORMAT_VERSION, tail=segments):
        return C.MAGIC + bytes([version]) + b"".join(frame(tag, payload) for tag, payload in order) + tail

    cases = {
        "after WGHT": ([*others[:2], (b"META", meta), *others[2:]], "expected section TABL, found tag b'META'"),
        "twice": ([others[0], *[(b"META", meta)] * 2, *others[1:]], "expected section WGHT, found tag b'META'"),
        "before HEAD": ([(b"META", meta), *others], "expected section HEAD, found tag b'META'"),
        # after LATN, where the latent segments start: segment 0 is read from META's bytes
        "after LATN": ([*others, (b"META", meta)], r"latent segment 0 is corrupted \(CRC32 mismatch\)"),
    }
    for order, match in cases.values():
        with pytest.raises(ShcFormatError, match=match):
            read_file(assemble(order))
    with pytest.raises(ShcFormatError, match="^[0-9]+ bytes of trailing garbage after the last section$"):
        read_file(assemble(others, tail=segments + frame(b"META", meta)))  # after the last segment
    # version 4 has no META: the same bytes with the version byte of 4 are refused at the tag
    with pytest.raises(ShcFormatError, match="expected section WGHT, found tag b'META'"):
        read_file(assemble(sections, version=4))
    # and every truncation of a file with metadata is a clean error
    for cut in range(len(data)):
        with pytest.raises(ShcFormatError):
            read_file(data[:cut])


def test_writer_refuses_what_a_reader_would_refuse() -> None:
    built = _small_file()[0]
    args = (built.header, built.weights, built.tables, built.words)
    for kwargs, match in [
        (dict(icc_profile=b""), "ICCP entry has 0 bytes"),
        (dict(exif=b"II*\0" + bytes(20)), r"does not start with Exif\\0\\0"),
        (dict(icc_profile=b"not a profile" * 20), "not an ICC profile"),
        (dict(icc_profile=P3 + bytes(C.MAX_META_ENTRY_BYTES)), "allowed 1..16777216"),
    ]:
        with pytest.raises(ValueError, match=match) as info:
            write_file(*args, **kwargs)
        assert not isinstance(info.value, ShcFormatError)
    with pytest.raises(ValueError, match="unknown META key b'XMP '"):
        metadata_payload({b"XMP ": b"<x/>"})
    assert metadata_payload({}) == b""


# ---------------------------------------------------------------------------------------------- loading


def _p3_image(path: Path, fmt: str = "PNG", orientation: int | None = 6) -> np.ndarray:
    """A 6 x 4 (W x H) image with the Display P3 profile and EXIF; returns the stored pixels."""
    stored = np.random.default_rng(3).integers(0, 256, (4, 6, 3), dtype=np.uint8)
    Image.fromarray(stored).save(path, fmt, icc_profile=P3, exif=exif_bytes(orientation))
    return stored


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_load_image_keeps_the_profile_and_applies_the_orientation(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"p3.{fmt.lower()}"
    stored = _p3_image(path, fmt)
    loaded = load_image(path)
    assert loaded.icc_profile == P3
    assert loaded.pixels.shape == (6, 4, 3)  # Orientation 6: 6 wide, 4 high as stored, shown 4 wide
    if fmt in ("PNG", "TIFF"):  # lossless
        np.testing.assert_array_equal(loaded.pixels, np.rot90(stored, k=-1))
    if fmt == "TIFF":  # TIFF tags are the image structure itself, not an EXIF block to carry along
        assert loaded.exif is None
    else:
        exif = Image.Exif()
        exif.load(loaded.exif)
        assert loaded.exif.startswith(b"Exif\0\0")  # also from WebP, whose chunk has no such prefix
        assert exif[MAKE] == "shc test" and exif.get(ORIENTATION, 1) == 1  # applied, so no longer asked for
    stripped = load_image(path, strip=True)
    assert stripped.icc_profile is None and stripped.exif is None
    np.testing.assert_array_equal(stripped.pixels, loaded.pixels)  # strip drops metadata, never changes pixels


def test_exif_without_orientation_is_kept_byte_for_byte(tmp_path: Path) -> None:
    _p3_image(tmp_path / "upright.png", orientation=1)
    with Image.open(tmp_path / "upright.png") as image:
        original = image.info["exif"]
    assert load_image(tmp_path / "upright.png").exif == original


def test_gray_profile_is_converted_to_srgb(tmp_path: Path) -> None:
    """An RGB file cannot carry a grayscale profile: the pixels are converted to sRGB with it instead of
    being read as sRGB (a linear-light gray 128 is sRGB ~188, not 128)."""
    p3 = runpy.run_path(str(DATA / "display_p3.py"))
    linear_gray = bytearray(P3)
    linear_gray[16:20] = b"GRAY"
    # keep the header, replace the tags by desc, wtpt and a gamma-1 kTRC
    tags = [(b"desc", p3["text_description"]("linear gray")), (b"wtpt", b"XYZ " + bytes(4) + p3["s15f16"](p3["D50"])),
            (b"kTRC", b"curv" + bytes(4) + struct.pack(">IH", 1, 0x100))]
    offset, table, body = 128 + 4 + 12 * len(tags), b"", b""
    for signature, payload in tags:
        table += signature + struct.pack(">II", offset + len(body), len(payload))
        body += p3["pad4"](payload)
    profile = bytes(linear_gray[:128]) + struct.pack(">I", len(tags)) + table + body
    profile = struct.pack(">I", len(profile)) + profile[4:]
    Image.fromarray(np.full((2, 3), 128, np.uint8), "L").save(tmp_path / "gray.png", icc_profile=profile)
    loaded = load_image(tmp_path / "gray.png")
    assert loaded.icc_profile is None
    assert abs(int(loaded.pixels[0, 0, 0]) - 188) <= 2 and np.ptp(loaded.pixels) == 0
    assert load_image(tmp_path / "gray.png", strip=True).pixels[0, 0].tolist() == [128, 128, 128]


def test_profile_that_does_not_match_the_pixels_is_refused(tmp_path: Path) -> None:
    inks = np.zeros((4, 4, 4), np.uint8)
    Image.fromarray(inks, "CMYK").save(tmp_path / "cmyk.jpg", icc_profile=P3)  # an RGB profile on CMYK pixels
    with pytest.raises(ImageInputError, match=r"cmyk.jpg: its ICC profile is for RGB data, the pixels are CMYK; use"):
        load_image(tmp_path / "cmyk.jpg")
    assert load_image(tmp_path / "cmyk.jpg", strip=True).pixels.shape == (4, 4, 3)
    with pytest.raises(ImageInputError, match="its ICC profile cannot be kept"):
        load_image(SourceImage(np.zeros((2, 2, 3), np.uint8), icc_profile=b"junk"))


# ---------------------------------------------------------------------------------------------- writing


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_saved_image_carries_the_profile_and_exif(fmt: str) -> None:
    decoded = decode_image(P3_GOLDEN.read_bytes())
    data = save_image_bytes(decoded, fmt)
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == fmt and image.size == (48, 64)
        assert image.info["icc_profile"] == P3
        if fmt == "PNG":
            assert b"iCCP" in data and b"eXIf" in data
            np.testing.assert_array_equal(np.asarray(image), decoded.pixels)
        if fmt != "TIFF":
            assert image.getexif()[MAKE] == "shc golden file"


def test_saving_never_drops_the_profile_silently() -> None:
    decoded = decode_image(P3_GOLDEN.read_bytes())
    with pytest.raises(ValueError, match="BMP cannot hold the image's ICC profile"):
        save_image_bytes(decoded, "BMP")
    no_profile = SourceImage(decoded.pixels, None, decoded.exif)
    with Image.open(io.BytesIO(save_image_bytes(no_profile, "BMP"))) as image:  # EXIF has no place in BMP
        np.testing.assert_array_equal(np.asarray(image), decoded.pixels)


def test_encode_keeps_and_strip_drops_the_metadata(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from shc.codec.encoder import encode_image

    path = tmp_path / "p3.png"
    rgb = np.asarray(Image.open(DATA / "parrot_64x48.png").convert("RGB"))[:24, :32]
    Image.fromarray(rgb).save(path, icc_profile=P3, exif=exif_bytes(orientation=8))
    kept = encode_image(path, preset="fast", quality=1, steps=20, seed=0)
    stripped = encode_image(path, preset="fast", quality=1, steps=20, seed=0, strip=True)
    decoded = decode_image(kept.data)
    assert decoded.icc_profile == P3 and decoded.pixels.shape == (32, 24, 3)  # Orientation 8: rotated
    exif = Image.Exif()
    exif.load(decoded.exif)
    assert exif[MAKE] == "shc test" and exif.get(ORIENTATION, 1) == 1
    assert decode_image(stripped.data).icc_profile is None and decode_image(stripped.data).exif is None
    parsed = read_file(kept.data)
    assert len(kept.data) - len(stripped.data) == parsed.section_bytes["metadata"]  # the same coded image
    np.testing.assert_array_equal(decode_bytes(kept.data), decode_bytes(stripped.data))
    assert kept.psnr_db == stripped.psnr_db and kept.psnr_alpha_db is None
    png = save_image_bytes(decoded, "PNG")
    with Image.open(io.BytesIO(png)) as image:
        assert image.info["icc_profile"] == P3 and image.getexif()[MAKE] == "shc test"
