"""A Deep Zoom (DZI) pyramid of a ``.shc`` file, every level rendered natively from the grid, and a viewer page.

Why natively: a DZI pyramid is usually made by downsampling the full image again and again; an implicit
representation renders any size directly, so each level is the decoder's own rendering at that size (no
full-resolution image is ever held, and a level costs what its pixels cost). Tiles are rendered as regions
(:meth:`shc.format.decoder.Synthesis.render`), one at a time.

Layout (the Deep Zoom format that OpenSeadragon and other viewers read): ``image.dzi`` (XML: tile size,
overlap, format, size), ``image_files/<level>/<column>_<row>.<format>``, where level ``k`` of
``max_level = ceil(log2(max(W, H)))`` is ``ceil(W / 2^(max_level - k)) x ceil(H / 2^(max_level - k))``, and
``index.html`` with OpenSeadragon copied next to it (``openseadragon/``), so the page works offline.
"""

from __future__ import annotations

import html
import io
import json
import math
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from shc.format.container import read_file
from shc.format.decoder import Synthesis
from shc.format.entropy import file_latents
from shc.format.reader import preview_levels

__all__ = [
    "DeepZoomLevel", "deep_zoom_levels", "dzi_xml", "encode_tile", "tile_box", "tile_boxes", "tile_format",
    "tile_grid", "viewer_page", "write_deep_zoom",
]

VIEWER = Path(__file__).parent / "viewer" / "openseadragon"
"""OpenSeadragon's script, images and licence (scripts/vendor_openseadragon.sh copies them from npm)."""
DZI_NAMESPACE = "http://schemas.microsoft.com/deepzoom/2008"


@dataclass(frozen=True)
class DeepZoomLevel:
    index: int
    width: int
    height: int


def deep_zoom_levels(width: int, height: int) -> list[DeepZoomLevel]:
    """Levels 0 (1 x 1) .. max_level (full size): each half the size of the next, rounded up."""
    max_level = math.ceil(math.log2(max(width, height))) if max(width, height) > 1 else 0
    return [DeepZoomLevel(k, -(-width // 2 ** (max_level - k)), -(-height // 2 ** (max_level - k)))
            for k in range(max_level + 1)]


def tile_boxes(
    level: DeepZoomLevel, tile_size: int, overlap: int
) -> Iterator[tuple[int, int, tuple[int, int, int, int]]]:
    """``(column, row, (left, top, right, bottom))`` of every tile of ``level``: ``tile_size`` pixels plus
    ``overlap`` on each side that has a neighbour, clipped to the level."""
    columns, rows = tile_grid(level, tile_size)
    for row in range(rows):
        for column in range(columns):
            yield column, row, tile_box(level, column, row, tile_size, overlap)


def tile_grid(level: DeepZoomLevel, tile_size: int) -> tuple[int, int]:
    """``(columns, rows)``: how many tiles ``level`` has across and down."""
    return -(-level.width // tile_size), -(-level.height // tile_size)


def tile_box(level: DeepZoomLevel, column: int, row: int, tile_size: int, overlap: int) -> tuple[int, int, int, int]:
    """``(left, top, right, bottom)`` of one tile of ``level`` (see :func:`tile_boxes`); the caller checks that
    ``(column, row)`` is inside :func:`tile_grid`."""
    left = max(0, column * tile_size - overlap)
    top = max(0, row * tile_size - overlap)
    right = min(level.width, (column + 1) * tile_size + overlap)
    bottom = min(level.height, (row + 1) * tile_size + overlap)
    return left, top, right, bottom


def dzi_xml(width: int, height: int, tile_size: int, overlap: int, fmt: str) -> str:
    """The ``.dzi`` file: the Deep Zoom XML that names the tile size, overlap, format and full size."""
    return (f'<?xml version="1.0" encoding="UTF-8"?>\n<Image xmlns="{DZI_NAMESPACE}" Format="{fmt}" '
            f'Overlap="{overlap}" TileSize="{tile_size}">\n  <Size Width="{width}" Height="{height}"/>\n</Image>\n')


def _index_html(width: int, height: int, tile_size: int, overlap: int, fmt: str, title: str) -> str:
    # The tile source is given inline rather than as image.dzi: browsers refuse to fetch a local XML file
    # from a page opened as file://, but they do load its tiles as images.
    source = {"Image": {"xmlns": DZI_NAMESPACE, "Url": "image_files/", "Format": fmt, "Overlap": str(overlap),
                        "TileSize": str(tile_size), "Size": {"Width": str(width), "Height": str(height)}}}
    return viewer_page(source, title)


def viewer_page(tile_sources: dict | str, title: str) -> str:
    """The OpenSeadragon page: ``tile_sources`` is an inline DZI description or the URL of a ``.dzi`` file;
    the viewer's files are expected at ``openseadragon/`` next to the page, and the viewer is ``window.viewer``
    (for scripts: scripts/deepzoom/screenshot.mjs waits on it)."""
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>html, body {{ margin: 0; height: 100%; background: #222; }} #viewer {{ width: 100%; height: 100%; }}</style>
<script src="openseadragon/openseadragon.min.js"></script>
</head>
<body>
<div id="viewer"></div>
<script>
window.viewer = OpenSeadragon({{
  id: "viewer",
  prefixUrl: "openseadragon/images/",
  tileSources: {json.dumps(tile_sources)},
  showNavigator: true,
  maxZoomPixelRatio: 2
}});
</script>
</body>
</html>
"""


def tile_format(channels: int, fmt: str | None = None) -> str:
    """The tile format: ``fmt`` checked (``jpg`` or ``png``; ValueError for JPEG with alpha), or by default
    png for images with alpha (``channels == 4``), else jpg."""
    fmt = fmt or ("png" if channels == 4 else "jpg")
    if fmt not in ("jpg", "png"):
        msg = f"tile format must be jpg or png, got {fmt!r}"
        raise ValueError(msg)
    if fmt == "jpg" and channels == 4:
        msg = "JPEG tiles cannot hold alpha: use png"
        raise ValueError(msg)
    return fmt


def encode_tile(pixels: np.ndarray, fmt: str, quality: int = 90, icc_profile: bytes | None = None) -> bytes:
    """One tile's file: uint8 ``(rows, columns, 3 or 4)`` pixels as JPEG (``quality``) or PNG (fast zlib
    level 1), with the image's ICC profile, so that a tile shows the colours the decoder's PNG would."""
    save = {"jpg": {"format": "JPEG", "quality": quality}, "png": {"format": "PNG", "compress_level": 1}}[fmt]
    if icc_profile:
        save["icc_profile"] = icc_profile
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(pixels), "RGBA" if pixels.shape[2] == 4 else "RGB").save(buffer, **save)
    return buffer.getvalue()


def write_deep_zoom(
    data: bytes, out_dir: Path, *, tile_size: int = 254, overlap: int = 1, fmt: str | None = None,
    quality: int = 90, title: str = "shc",
) -> dict:
    """Write the pyramid, ``image.dzi``, ``index.html`` and the viewer into ``out_dir`` (which must exist and
    be empty). ``fmt``: ``jpg`` or ``png`` (default: png for images with alpha, else jpg). Returns a summary
    (levels, tiles, size). Raises :class:`shc.ShcFormatError` for a malformed file."""
    parsed = read_file(data)
    synthesis = Synthesis(parsed, file_latents(parsed))
    width, height = parsed.header.width, parsed.header.height
    channels = parsed.header.config.channels
    fmt = tile_format(channels, fmt)
    levels = deep_zoom_levels(width, height)
    tiles = 0
    for level in levels:
        folder = out_dir / "image_files" / str(level.index)
        folder.mkdir(parents=True)
        # a reduced level renders from the prefix of grid levels its size needs, as `shc serve` does
        level_synthesis = synthesis.prefix(preview_levels(parsed.header, level.width, level.height))
        for column, row, box in tile_boxes(level, tile_size, overlap):
            pixels = level_synthesis.render(level.width, level.height, box)
            tile = encode_tile(pixels, fmt, quality, parsed.icc_profile)
            (folder / f"{column}_{row}.{fmt}").write_bytes(tile)
            tiles += 1
    (out_dir / "image.dzi").write_text(dzi_xml(width, height, tile_size, overlap, fmt))
    (out_dir / "index.html").write_text(_index_html(width, height, tile_size, overlap, fmt, title))
    shutil.copytree(VIEWER, out_dir / "openseadragon")
    return {"width": width, "height": height, "levels": len(levels), "tiles": tiles, "format": fmt,
            "tile_size": tile_size, "overlap": overlap}
