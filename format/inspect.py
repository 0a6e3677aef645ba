"""What each grid level holds and costs: its feature map and its bits, as numbers and as one montage.

SHACIRA's appendix (arXiv:2309.15848, §4) shows each level's feature map as an image. Here
:func:`level_feature_maps` renders them with the normative blend of the decoder
(:meth:`shc.format.synthesis.Synthesis.tile_features`, positions from :func:`shc.format.grid.axis_taps`),
:func:`level_bits` prices every level's latents under the file's own integer coding tables, and
:func:`montage` puts both into one image. numpy and Pillow only (no torch).

Example (``shc inspect x.shc -o levels.png`` does this)::

    parsed = read_file(Path("x.shc").read_bytes())    # shc.format.container
    latents = file_latents(parsed)                      # shc.format.entropy
    bits = level_bits(parsed, latents)                  # sum within a few bytes of the LATN payload
    montage(parsed, latents).save("levels.png")
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from shc.format import constants as C
from shc.format.container import ShcFile
from shc.format.context import coarser_latents, context_level_bits
from shc.format.synthesis import Synthesis

__all__ = [
    "DEFAULT_TILE",
    "FLAT_TOLERANCE",
    "FLOAT16_BITS",
    "LevelStats",
    "feature_image",
    "file_num_bytes",
    "is_flat",
    "latent_payload_bytes",
    "level_bits",
    "level_feature_maps",
    "level_stats",
    "montage",
    "preview_size",
]

DEFAULT_TILE = 256
"""Long side, in pixels, of each level's tile in the montage: previews stay cheap for any image size."""

FLOAT16_BITS = 16
"""Bits of one latent of a float16 file (``latent_coding`` = 1, SPEC §6b)."""

FLAT_TOLERANCE = 1e-5
"""Relative span below which a feature map counts as constant (:func:`is_flat`): float32 blends of one
value differ from it by a few units in the last place (~1e-7 relative), a real feature far more."""

_BACKGROUND = (255, 255, 255)
_INK = (0, 0, 0)
_FRAME = (160, 160, 160)
_PAD = 6


@dataclass(frozen=True)
class LevelStats:
    """One level of a file: its cells, its storage and the bits its latents cost."""

    index: int
    nx: int
    ny: int
    dense: bool
    rows: int
    num_latents: int
    bits: float
    """Ideal range-coder cost under the file's coding tables (float16 files: 16 bits per latent)."""
    share: float
    """Fraction of all latent bits (0 when the latents cost nothing)."""


def _check_latents(shc_file: ShcFile, latents: list[np.ndarray]) -> None:
    layout = shc_file.header.layout
    if len(latents) != len(layout.levels):
        msg = f"{len(latents)} latent arrays given, the header has {len(layout.levels)} levels"
        raise ValueError(msg)
    for level, lat in zip(layout.levels, latents):
        if np.shape(lat) != (level.rows, layout.latent_dim):
            msg = f"level {level.index} latents have shape {np.shape(lat)}, expected {(level.rows, layout.latent_dim)}"
            raise ValueError(msg)


def level_bits(shc_file: ShcFile, latents: list[np.ndarray]) -> list[float]:
    """Bits each level's latents cost, level 0 first.

    Range-coded files (SPEC §5, §6): latent dimension d of a factorized level l is coded with the table of
    ``(g(l), d)``, a context level's latent with the table its context picks (§5a), so a latent costs
    ``-log2(c_s / 2**15)`` bits, ``c_s`` being its symbol's integer count: the ideal cost of the range coder, which the LATN payload exceeds by at most a few bytes of
    flushing. A one-symbol table costs 0 bits. Float16 files (SPEC §6b): 16 bits per latent.

    Args:
        shc_file: The parsed file (:func:`shc.format.container.read_file`).
        latents: Its latents per level, ``(rows_l, latent_dim)`` (:func:`shc.format.entropy.file_latents`).

    Raises:
        ValueError: If the latents do not fit the header's layout or a latent lies outside its table.
    """
    _check_latents(shc_file, latents)
    header, layout = shc_file.header, shc_file.header.layout
    if not header.range_coded:
        return [float(FLOAT16_BITS * level.rows * layout.latent_dim) for level in layout.levels]
    scale = float(1 << C.TABLE_PRECISION)
    costs = [-np.log2(table.counts.astype(np.float64) / scale) for table in shc_file.tables]
    bits = [0.0] * len(layout.levels)
    for slot, level in enumerate(layout.context_levels):
        bits[level.index] = context_level_bits(shc_file.context, slot, layout.levels, level.index,
                                               np.asarray(latents[level.index][:, 0], dtype=np.int64),
                                               coarser_latents(latents, level.index))
    for run in layout.coding_runs():
        table = shc_file.tables[run.table]
        symbols = np.asarray(latents[run.level.index][:, run.dim], dtype=np.int64) - table.min_symbol
        if symbols.size and (int(symbols.min()) < 0 or int(symbols.max()) >= len(table.counts)):
            msg = (f"level {run.level.index} latents lie outside table {run.table} "
                   f"[{table.min_symbol}, {table.max_symbol}]")
            raise ValueError(msg)
        bits[run.level.index] += float(np.bincount(symbols, minlength=len(table.counts)) @ costs[run.table])
    return bits


def level_stats(shc_file: ShcFile, latents: list[np.ndarray]) -> list[LevelStats]:
    """:func:`level_bits` with each level's cells, storage (dense or hashed, SPEC §4) and share of the total."""
    bits = level_bits(shc_file, latents)
    total = sum(bits)
    dim = shc_file.header.layout.latent_dim
    return [
        LevelStats(level.index, level.nx, level.ny, level.dense, level.rows, level.rows * dim, b,
                   b / total if total > 0 else 0.0)
        for level, b in zip(shc_file.header.layout.levels, bits)
    ]


def latent_payload_bytes(shc_file: ShcFile) -> int:
    """Bytes of the coded latents, without LATN's framing and (version 7) its segment index: what
    :func:`level_bits` sums to, up to each segment coder's flush."""
    return sum(int(values.nbytes) for values in shc_file.latent_segments)


def file_num_bytes(shc_file: ShcFile) -> int:
    """Size of the whole file: its sections with their framing, and the magic and version."""
    return sum(shc_file.section_bytes.values())


def preview_size(width: int, height: int, long_side: int = DEFAULT_TILE) -> tuple[int, int]:
    """``(w, h)`` with the aspect ratio of ``width x height`` and a long side of ``long_side`` pixels.

    Small images are rendered larger than native (the grid is continuous, and captions need the room);
    large ones smaller, so a preview costs the same for any file.
    """
    if min(width, height, long_side) < 1:
        msg = f"sizes must be positive, got {width}x{height} and long side {long_side}"
        raise ValueError(msg)
    factor = long_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def level_feature_maps(shc_file: ShcFile, latents: list[np.ndarray], width: int, height: int) -> list[np.ndarray]:
    """Each level's features over a ``width x height`` raster, level 0 (coarsest) first.

    The features are the latent decoder's output ``Φ_l`` (SPEC §7 step 2) blended at every pixel exactly as
    the decoder blends them before the MLP (§7 steps 3-4): the rows of :meth:`Synthesis.tile_features`.

    Returns:
        Per level a float32 array ``(feat_dim, height, width)``.
    """
    _check_latents(shc_file, latents)
    if width < 1 or height < 1:
        msg = f"size must be positive, got {width}x{height}"
        raise ValueError(msg)
    cfg = shc_file.header.config
    out = np.empty((cfg.num_levels, cfg.feat_dim, height, width), dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):  # overflowing weights: shown by feature_image
        synthesis = Synthesis(shc_file, latents)
        tile_rows = max(1, C.DECODE_TILE_PIXELS // width)
        for top in range(0, height, tile_rows):
            bottom = min(height, top + tile_rows)
            features = synthesis.tile_features(width, height, np.arange(width), np.arange(top, bottom))
            out[:, :, top:bottom] = features.reshape(cfg.num_levels, cfg.feat_dim, bottom - top, width)
    return list(out)


def _finite(values: np.ndarray) -> np.ndarray:
    return np.nan_to_num(np.asarray(values, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)


def is_flat(values: np.ndarray) -> bool:
    """Whether values are one constant up to float32 rounding (span at most ``FLAT_TOLERANCE`` of their
    magnitude): a level whose latents are all equal blends its one feature with weights that sum to 1 only up
    to rounding, and stretching that noise to 0..255 would draw the grid instead of a flat tile."""
    values = _finite(values)
    if values.size == 0:
        return True
    low, high = float(values.min()), float(values.max())
    return high - low <= FLAT_TOLERANCE * max(abs(low), abs(high))


def feature_image(feature_map: np.ndarray) -> np.ndarray:
    """8-bit pixels of one level's features ``(F, h, w)``: one feature → gray ``(h, w)``; two or more →
    the first three as R, G, B ``(h, w, 3)`` (B = 0 when F = 2).

    Each shown channel is stretched from its own min to its max onto 0..255; a flat one (see
    :func:`is_flat`) is 128 everywhere. Non-finite values (only from weights that overflow float32) count as 0.
    """
    values = _finite(feature_map)[:3]
    low = values.min(axis=(1, 2), keepdims=True)
    span = values.max(axis=(1, 2), keepdims=True) - low
    flat = np.array([is_flat(channel) for channel in values])[:, None, None]
    scaled = np.where(flat, 128.0, np.rint((values - low) / np.where(flat, 1.0, span) * 255.0)).astype(np.uint8)
    if scaled.shape[0] == 1:
        return scaled[0]
    if scaled.shape[0] == 2:
        scaled = np.concatenate([scaled, np.zeros_like(scaled[:1])])
    return np.moveaxis(scaled, 0, -1)


def _text_size(draw: ImageDraw.ImageDraw, text: str, font) -> tuple[int, int]:
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    return right - left, bottom


def _channel_note(feat_dim: int) -> str:
    if feat_dim == 1:
        return "gray"
    if feat_dim == 2:
        return "features 0-1 as R, G"
    return f"features 0-2 of {feat_dim} as R, G, B"


def montage(
    shc_file: ShcFile,
    latents: list[np.ndarray],
    tile: int = DEFAULT_TILE,
    columns: int | None = None,
    num_bytes: int | None = None,
    name: str = "",
) -> Image.Image:
    """One RGB image of every level's feature map with its bits, coarse to fine in rows of ``columns`` tiles.

    Each tile (long side ``tile`` pixels, see :func:`preview_size`) is one level stretched to its own range
    by :func:`feature_image`, captioned with the level index, its cells, dense or hashed storage, and the
    bits of its latents with their share of all latent bits (:func:`level_bits`). A title gives the file's
    size and bpp. ``num_bytes`` is the file size (default: from its sections); ``name`` starts the title.
    """
    header = shc_file.header
    cfg = header.config
    if columns is None:
        columns = math.ceil(math.sqrt(cfg.num_levels))
    if columns < 1:
        msg = f"columns must be positive, got {columns}"
        raise ValueError(msg)
    num_bytes = file_num_bytes(shc_file) if num_bytes is None else num_bytes
    stats = level_stats(shc_file, latents)
    tile_w, tile_h = preview_size(header.width, header.height, tile)
    maps = level_feature_maps(shc_file, latents, tile_w, tile_h)

    font = ImageFont.load_default()
    measure = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    total_bits = sum(s.bits for s in stats)
    bpp = num_bytes * 8 / (header.width * header.height)
    coding = "range-coded" if header.range_coded else "float16"
    title = [
        f"{name + ': ' if name else ''}{header.width}x{header.height}, {num_bytes} bytes, {bpp:.4f} bpp",
        f"{cfg.num_levels} levels, {coding} latents: {total_bits:.0f} bits "
        f"(LATN {latent_payload_bytes(shc_file)} bytes); features per level: {_channel_note(cfg.feat_dim)}, "
        "min..max of each",
    ]
    captions = [
        [f"level {s.index}: {s.nx}x{s.ny} cells, {'dense' if s.dense else 'hashed'}",
         f"{s.bits:.1f} bits ({100.0 * s.share:.1f} %){', flat' if all(map(is_flat, m[:3])) else ''}"]
        for s, m in zip(stats, maps)
    ]
    line_h = max(_text_size(measure, line, font)[1] for line in [*title, *captions[0]]) + 2
    caption_w = max(_text_size(measure, line, font)[0] for lines in captions for line in lines)
    cell_w = max(tile_w + 2, caption_w) + 2 * _PAD
    cell_h = tile_h + 2 + 2 * line_h + 2 * _PAD
    rows = math.ceil(cfg.num_levels / columns)
    title_w = max(_text_size(measure, line, font)[0] for line in title) + 2 * _PAD
    title_h = len(title) * line_h + 2 * _PAD
    image = Image.new("RGB", (max(columns * cell_w, title_w), title_h + rows * cell_h), _BACKGROUND)
    draw = ImageDraw.Draw(image)
    for k, line in enumerate(title):
        draw.text((_PAD, _PAD + k * line_h), line, fill=_INK, font=font)
    for level, (feature_map, lines) in enumerate(zip(maps, captions)):
        x = (level % columns) * cell_w + _PAD
        y = title_h + (level // columns) * cell_h + _PAD
        draw.rectangle((x, y, x + tile_w + 1, y + tile_h + 1), outline=_FRAME)
        pixels = feature_image(feature_map)
        image.paste(Image.fromarray(pixels).convert("RGB"), (x + 1, y + 1))
        for k, line in enumerate(lines):
            draw.text((x, y + tile_h + 4 + k * line_h), line, fill=_INK, font=font)
    return image
