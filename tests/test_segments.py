"""Format version 7: chunked levels (SPEC §4a), latent segments and the LATN index (§6), and what they are for:
:class:`shc.format.reader.ShcReader` decodes a region, a prefix of the levels, or what a file cut short
holds, from only the segments it needs (§6, §7). numpy and constriction only (no torch), fast.

The chunk geometry and the packing of segments are written here from SPEC.md (:func:`hand_chunks`,
:func:`hand_segments`) and checked against the library's layout; the files are built with the library's
writer from random integer latents, so that every decode can be compared with the latents it must give.
"""

from __future__ import annotations

import functools
import hashlib
import io
import json
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from shc.format import constants as C
from shc.format.container import read_file, write_file
from shc.format.decoder import Synthesis, decode_bytes
from shc.format.header import Header, ModelConfig
from shc.format.table import Table
from shc.format.entropy import (
    decode_latents,
    encode_latents,
    file_latents,
    histogram_tables,
    pack_float16_latents,
    unpack_float16_latents,
)
from shc.format.errors import ShcFormatError
from shc.format.grid import level_chunking, level_num_rows, vertex_rows
from shc.format.reader import ShcReader, region_segments
from shc.tools.fuzz import random_context, random_weights, table_latents

COMPAT_DIR = Path(__file__).parent / "data" / "compat"
COMPAT = json.loads((COMPAT_DIR / "compat.json").read_text())
V6_NAMES = sorted(name for name in COMPAT["files"] if name.endswith("_v6.shc"))

WHOLE_MAX_ROWS = 1 << 17
"""SPEC §4a: a level with more rows is chunked."""
TARGET_ROWS = 1 << 16
"""SPEC §4a: the chunk side is the smallest power of two s with s^2 rows >= 2^16 vertices."""
SEGMENT_MAX = 1 << 17
"""SPEC §6: consecutive whole levels share a segment while it holds at most this many latents."""
BRIEF_CELLS = ((10, 8), (100, 80), (400, 350), (1100, 900))
"""Two whole levels (99 and 8,181 rows), a dense level of 401 x 351 vertices in 2 x 2 chunks of 256^2, a hashed
level of 1101 x 901 vertices (T = 18) in 3 x 2 chunks of 512^2: 1 + 4 + 6 = 11 segments."""


# ---------------------------------------------------------------------------------------------- SPEC by hand


def hand_rows(nx: int, ny: int, log2_size: int) -> tuple[int, bool]:
    """SPEC §4: rows of a level coded whole, and whether it is dense."""
    vertices = (nx + 1) * (ny + 1)
    return (vertices, True) if vertices <= 1 << log2_size else (1 << log2_size, False)


def hand_chunks(nx: int, ny: int, log2_size: int) -> tuple[int, int, int, int] | None:
    """SPEC §4a: ``(side, columns, rows of chunks, rows per hashed chunk R or 0)``, or None for a whole level."""
    rows, dense = hand_rows(nx, ny, log2_size)
    if rows <= WHOLE_MAX_ROWS:
        return None
    side = 1
    while side * side * rows < TARGET_ROWS * (nx + 1) * (ny + 1):
        side *= 2
    columns, rows_c = -(-(nx + 1) // side), -(-(ny + 1) // side)
    return side, columns, rows_c, 0 if dense else (1 << log2_size) // (columns * rows_c)


def hand_segments(cells, log2_size: int, latent_dim: int) -> list[list[tuple[int, int | None]]]:
    """SPEC §6: segments as lists of pieces ``(level, chunk)`` (chunk None: the whole level)."""
    segments, current, held = [], [], 0
    for level, (nx, ny) in enumerate(cells):
        chunks = hand_chunks(nx, ny, log2_size)
        if chunks is not None:
            segments += [current] if current else []
            current, held = [], 0
            segments += [[(level, k)] for k in range(chunks[1] * chunks[2])]
            continue
        size = latent_dim * hand_rows(nx, ny, log2_size)[0]
        if current and held + size > SEGMENT_MAX:
            segments.append(current)
            current, held = [], 0
        current.append((level, None))
        held += size
    return segments + ([current] if current else [])


def layout_pieces(header: Header) -> list[list[tuple[int, int | None]]]:
    return [[(piece.level.index, piece.chunk) for piece in segment.pieces] for segment in header.layout.segments]


def front_and_segments(data: bytes) -> tuple[int, list[tuple[int, int]]]:
    """Where a version-7 file's segments start, and each one's ``(offset, length)``, from its bytes (SPEC §1,
    §6): the sections framed as tag, u32 length, payload, u32 CRC up to LATN, whose payload is the index."""
    pos = C.FILE_PREFIX_BYTES
    while True:
        tag = data[pos : pos + 4]
        (length,) = struct.unpack_from("<I", data, pos + 4)
        payload = data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if tag == b"LATN":
            break
    out, at = [], pos
    for k in range(0, len(payload), 8):
        (size,) = struct.unpack_from("<I", payload, k)
        out.append((at, size))
        at += size
    return pos, out


def with_index(data: bytes, payload: bytes) -> bytes:
    """``data`` with another LATN payload (its CRC re-fixed), the bytes after LATN kept."""
    front, _ = front_and_segments(data)
    pos = C.FILE_PREFIX_BYTES
    while data[pos : pos + 4] != b"LATN":
        (length,) = struct.unpack_from("<I", data, pos + 4)
        pos += 12 + length
    return (data[:pos] + b"LATN" + struct.pack("<I", len(payload)) + payload
            + struct.pack("<I", zlib.crc32(b"LATN" + payload)) + data[front:])


# ---------------------------------------------------------------------------------------------- chunk geometry


@pytest.mark.parametrize("cells", [(400, 350), (362, 362), (1000, 200), (131071, 1), (4095, 32)])
def test_dense_chunks_are_256_vertices_square(cells: tuple[int, int]) -> None:
    """A dense level of more than 2^17 vertices: s^2 rows >= 2^16 rows gives s = 256, whatever its shape."""
    nx, ny = cells
    rows, dense = level_num_rows(nx, ny, 24)
    assert dense and rows == (nx + 1) * (ny + 1) > WHOLE_MAX_ROWS
    chunking = level_chunking(nx, ny, 24)
    assert (chunking.side, chunking.columns, chunking.rows, chunking.chunk_rows) == hand_chunks(nx, ny, 24)
    assert chunking.side == 256 and chunking.dense
    assert level_num_rows(nx, ny, 24, chunking) == (rows, True)  # a dense level keeps its rows


def test_levels_up_to_2_17_rows_are_whole() -> None:
    assert level_chunking(511, 255, 17) is None  # 512 x 256 = 2^17 dense rows
    assert level_chunking(1000, 1000, 17) is None  # hashed into 2^17 rows
    assert level_chunking(512, 255, 18) is not None  # 2^17 + 256 dense rows
    assert level_chunking(1000, 1000, 18) is not None  # hashed into 2^18 rows
    assert level_chunking(5000, 5000, 16) is None  # hashed into 2^16 rows, however many vertices


def test_hashed_chunk_test_vector() -> None:
    """SPEC §4a: T = 18, cells 1100 x 900: s = 512, 3 x 2 chunks of R = 43,690 rows; vertex (700, 600) is in
    chunk 4, h = 700 XOR (600 * 2654435761 mod 2^32) = 3,523,556,452, row 4 R + (h mod R) = 176,402."""
    chunking = level_chunking(1100, 900, 18)
    assert (chunking.side, chunking.columns, chunking.rows, chunking.dense) == (512, 3, 2, False)
    assert chunking.chunk_rows == 43690 == (1 << 18) // 6 and chunking.count == 6
    h = 700 ^ (600 * 2654435761 % 2**32)
    assert h == 3_523_556_452 and 4 * 43690 + h % 43690 == 176_402
    assert int(vertex_rows(np.array(700), np.array(600), 1100, 900, 18, chunking)) == 176_402
    assert level_num_rows(1100, 900, 18, chunking) == (6 * 43690, False)  # 4 rows of the 2^18 unused


@pytest.mark.parametrize(("cells", "log2_size"), [((1100, 900), 18), ((700, 700), 18), ((2000, 300), 19),
                                                  ((1500, 1200), 19), ((400, 350), 18)])
def test_every_vertex_row_lies_in_its_chunk(cells: tuple[int, int], log2_size: int) -> None:
    """Every vertex's row is one its chunk codes (SPEC §4a): a hashed chunk's own R rows, a dense chunk's
    vertices; the chunks' rows partition the level's rows, and a hashed level's rows are at most 2^T."""
    nx, ny = cells
    header = Header(64, 48, ModelConfig(num_levels=1, log2_hashmap_size=log2_size), (cells,))
    (level,) = header.layout.levels
    grid = level.chunking
    assert grid is not None and (grid.side, grid.columns, grid.rows, grid.chunk_rows) == hand_chunks(nx, ny, log2_size)
    xs, ys = np.arange(nx + 1)[None, :], np.arange(ny + 1)[:, None]
    rows = level.vertex_grid_rows()
    assert rows.shape == (ny + 1, nx + 1) and rows.min() >= 0 and rows.max() < level.rows
    chunk_of_vertex = (ys // grid.side) * grid.columns + xs // grid.side
    owner = np.full(level.rows, -1)
    for k in range(grid.count):
        piece = level.piece_rows(k)
        assert np.all(owner[piece] == -1)  # no row in two chunks
        owner[piece] = k
        if grid.dense:  # a dense chunk codes its own vertices, row-major
            cy, cx = divmod(k, grid.columns)
            block = rows[cy * grid.side : (cy + 1) * grid.side, cx * grid.side : (cx + 1) * grid.side]
            np.testing.assert_array_equal(piece, block.reshape(-1))
    assert np.all(owner >= 0)  # every row coded by a chunk
    np.testing.assert_array_equal(owner[rows], chunk_of_vertex)  # ... the one its vertex lies in
    if not grid.dense:
        assert level.rows == grid.count * grid.chunk_rows <= 1 << log2_size
        h = xs ^ (ys * 2654435761 % 2**32)  # the uint32 hash of SPEC §4, in Python-sized int64, no mask
        np.testing.assert_array_equal(rows, chunk_of_vertex * grid.chunk_rows + h % grid.chunk_rows)
    # a chunk's rows are used: hashing spreads its vertices over most of them
    assert len(np.unique(rows)) > 0.5 * min(level.rows, rows.size)


def test_chunks_covering_a_box_of_vertices() -> None:
    (level,) = Header(64, 48, ModelConfig(num_levels=1, log2_hashmap_size=18), ((1100, 900),)).layout.levels
    assert level.chunks_covering(0, 0, 0, 0) == [0]
    assert level.chunks_covering(511, 512, 0, 3) == [0, 1]
    assert level.chunks_covering(0, 1100, 0, 900) == list(range(6))
    assert level.chunks_covering(1024, 1100, 512, 900) == [5]
    assert level.chunks_covering(500, 600, 500, 600) == [0, 1, 3, 4]


# ---------------------------------------------------------------------------------------------- segments


PACKING = [
    # (cells, T, D, expected segments as lists of (level, chunk))
    (BRIEF_CELLS, 18, 1, [[(0, None), (1, None)], *[[(2, k)] for k in range(4)], *[[(3, k)] for k in range(6)]]),
    # 2^17 latents exactly share a segment; one more starts a new one
    (((511, 127), (511, 127)), 17, 1, [[(0, None), (1, None)]]),
    (((511, 127), (511, 127), (1, 1)), 17, 1, [[(0, None), (1, None)], [(2, None)]]),
    # D = 2 doubles each level's latents: a whole level of 2^17 rows (2^18 latents) is a segment alone
    (((3, 3), (1000, 1000), (3, 3)), 17, 2, [[(0, None)], [(1, None)], [(2, None)]]),
    (((3, 3), (100, 100), (200, 200), (3, 3)), 16, 2, [[(0, None), (1, None), (2, None), (3, None)]]),
    (((3, 3), (100, 100), (300, 300), (3, 3)), 16, 2, [[(0, None), (1, None)], [(2, None)], [(3, None)]]),
    # a chunked level ends the run of whole levels before it; the whole ones after it start a new segment
    (((2, 2), (700, 700), (5, 5), (6, 6)), 18, 1, [[(0, None)], *[[(1, k)] for k in range(4)], [(2, None), (3, None)]]),
]


@pytest.mark.parametrize(("cells", "log2_size", "latent_dim", "expected"), PACKING)
def test_segment_packing_rule(cells, log2_size: int, latent_dim: int, expected) -> None:
    header = Header(64, 48, ModelConfig(num_levels=len(cells), log2_hashmap_size=log2_size, latent_dim=latent_dim),
                    tuple(cells))
    header.validate()
    assert layout_pieces(header) == hand_segments(cells, log2_size, latent_dim) == expected
    layout = header.layout
    for segment in layout.segments:  # the latents a segment holds (a float16 segment is twice that in bytes)
        rows = sum(piece.level.rows if piece.chunk is None else piece.level.piece_rows(piece.chunk).size
                   for piece in segment.pieces)
        assert layout.segment_latents(segment) == latent_dim * rows
    assert sum(layout.segment_latents(s) for s in layout.segments) == layout.total_latents


def test_segment_packing_of_random_grids() -> None:
    rng = np.random.default_rng(3)
    for _ in range(40):
        levels = int(rng.integers(1, 7))
        log2_size = int(rng.integers(12, 20))
        cells = tuple((int(rng.integers(1, 1500)), int(rng.integers(1, 1500))) for _ in range(levels))
        header = Header(64, 48, ModelConfig(num_levels=levels, log2_hashmap_size=log2_size,
                                            latent_dim=int(rng.integers(1, 3))), cells)
        assert layout_pieces(header) == hand_segments(cells, log2_size, header.config.latent_dim)


def test_older_headers_have_one_segment_and_no_chunks() -> None:
    """A version-6 header (read from an older file) keeps its layout: no chunks, one segment of every level."""
    header = Header(64, 48, ModelConfig(num_levels=4, log2_hashmap_size=18), BRIEF_CELLS, version=6)
    assert all(level.chunking is None for level in header.layout.levels)
    assert layout_pieces(header) == [[(0, None), (1, None), (2, None), (3, None)]]
    assert header.layout.levels[3].rows == 1 << 18


# ---------------------------------------------------------------------------------------------- a chunked file


@dataclass(frozen=True)
class Built:
    header: Header
    tables: tuple[Table, ...]
    latents: list[np.ndarray]
    segments: tuple[np.ndarray, ...]
    data: bytes
    context: object = None


@functools.cache
def chunked(width: int = 160, height: int = 120, latent_dim: int = 2, context_width: int = 0) -> Built:
    """A file of :data:`BRIEF_CELLS` (T = 18, two groups, the B-spline) with random integer latents in -2 .. 2
    (and, with ``context_width``, a context network on level 1)."""
    config = ModelConfig(num_levels=4, log2_hashmap_size=18, latent_dim=latent_dim, feat_dim=2, mlp_width=8,
                         mlp_depth=1, num_groups=2, interpolation=C.INTERPOLATION_BSPLINE, context_width=context_width)
    header = Header(width, height, config, BRIEF_CELLS)
    header.validate()
    rng = np.random.default_rng([width, height, latent_dim, context_width])
    pmf = np.array([0.05, 0.15, 0.6, 0.15, 0.05])
    latents = table_latents(rng, header, [(pmf, -2)] * header.layout.num_tables)
    context = None
    if context_width:
        for level in header.layout.context_levels:
            latents[level.index][:, 0] = np.clip(np.rint(rng.laplace(0.0, 1.5, level.rows)), -5, 5)
        context = random_context(rng, header, latents)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header)
    segments = encode_latents(header, tables, latents, context)
    return Built(header, tables, latents, segments, write_file(header, weights, tables, segments, context=context),
                 context)


def test_chunked_file_round_trip() -> None:
    """encode_latents gives one uint32 array per segment; the file is the front, the LATN index of their
    lengths and CRCs, and their bytes; read back and decoded, exactly the latents (SPEC §6)."""
    built = chunked()
    assert len(built.segments) == 11 and all(w.dtype == np.uint32 and w.size > 0 for w in built.segments)
    front, placed = front_and_segments(built.data)
    assert [length for _, length in placed] == [4 * w.size for w in built.segments]
    for (offset, length), words in zip(placed, built.segments):
        assert built.data[offset : offset + length] == words.astype("<u4").tobytes()
    assert placed[-1][0] + placed[-1][1] == len(built.data)  # the file ends with the last segment
    index = built.data[front - 4 - 8 * 11 : front - 4]
    assert index == b"".join(struct.pack("<II", 4 * w.size, zlib.crc32(w.astype("<u4").tobytes()))
                             for w in built.segments)
    parsed = read_file(built.data)
    assert parsed.header == built.header and len(parsed.latent_segments) == 11
    for got, want in zip(file_latents(parsed), built.latents, strict=True):
        np.testing.assert_array_equal(got, want)
    for got, want in zip(decode_latents(built.header, built.tables, built.segments), built.latents, strict=True):
        np.testing.assert_array_equal(got, want)
    assert write_file(parsed.header, parsed.weights, parsed.tables, parsed.latent_segments) == built.data
    pixels = decode_bytes(built.data)
    assert pixels.shape == (120, 160, 3) and len(np.unique(pixels.reshape(-1, 3), axis=0)) > 100


def test_each_segment_decodes_alone() -> None:
    """A segment is its own range-coder stream: decoded with no other, it gives its pieces' latents exactly
    (and 0 elsewhere)."""
    built = chunked()
    layout = built.header.layout
    for segment in layout.segments:
        alone = file_latents_of(built, [segment.index])
        for level in layout.levels:
            rows = np.concatenate([np.arange(level.rows) if p.chunk is None else level.piece_rows(p.chunk)
                                   for p in segment.pieces if p.level.index == level.index] or [np.zeros(0, int)])
            np.testing.assert_array_equal(alone[level.index][rows], built.latents[level.index][rows])
            others = np.ones(level.rows, dtype=bool)
            others[rows] = False
            assert not np.any(alone[level.index][others])


def file_latents_of(built: Built, segments: list[int]) -> list[np.ndarray]:
    reader = ShcReader(built.data)
    return reader.latents(segments)


def edge_boxes(header: Header, width: int, height: int) -> list[tuple[int, int, int, int]]:
    """Boxes on the image's corners and edges and on the chunk corners of each chunked level: the pixel
    columns and rows whose position crosses a chunk boundary (SPEC §7 step 3: x = (i + 1/2) / w nx)."""
    boxes = [(0, 0, 1, 1), (width - 1, height - 1, width, height), (0, height - 3, width, height),
             (width - 2, 0, width, height), (0, 0, width, 1)]
    for level in header.layout.levels:
        if level.chunking is None:
            continue
        side = level.chunking.side
        x = min(width - 1, max(0, int(side * width / level.nx - 0.5)))
        y = min(height - 1, max(0, int(side * height / level.ny - 0.5)))
        boxes += [(max(0, x - 2), max(0, y - 2), min(width, x + 3), min(height, y + 3)),  # around the corner
                  (0, 0, x + 1, y + 1), (x, y, width, height), (x + 1, 0, min(width, x + 2), height)]
    return sorted(set(boxes))


@pytest.mark.parametrize("size", ["native", 0.37, 2])
def test_region_decode_equals_the_full_decode(size) -> None:
    """Through ShcReader, a region reads only the chunks under it and renders the very pixels of the same
    box of a full decode (SPEC §7, regions), at native size and at other sizes; a small one reads fewer
    bytes than the file."""
    built = chunked()
    header = built.header
    if size == "native":
        width, height = header.width, header.height
        full = decode_bytes(built.data)
    else:
        width, height = max(1, round(header.width * size)), max(1, round(header.height * size))
        full = decode_bytes(built.data, scale=size)
    assert full.shape[:2] == (height, width)
    fewer = 0
    for box in edge_boxes(header, width, height):
        reader = ShcReader(built.data)
        pixels = reader.synthesis(width, height, box=box).render(width, height, box)
        left, top, right, bottom = box
        np.testing.assert_array_equal(pixels, full[top:bottom, left:right], err_msg=f"{box} of {width}x{height}")
        needed = region_segments(header.layout, width, height, box, kernel=header.config.interpolation)
        front, placed = front_and_segments(built.data)
        assert reader.bytes_read == front + sum(placed[k][1] for k in needed)
        fewer += reader.bytes_read < len(built.data)
    assert fewer >= 4  # the corner boxes read some of the chunks only
    # the top-left pixel needs segment 0 (the whole levels) and the first chunk of each chunked level
    assert region_segments(header.layout, width, height, (0, 0, 1, 1), kernel=1) == [0, 1, 5]


def test_region_reads_from_a_path_and_a_file_object(tmp_path: Path) -> None:
    built = chunked()
    path = tmp_path / "chunked.shc"
    path.write_bytes(built.data)
    box = (130, 100, 160, 120)
    expected = decode_bytes(built.data)[100:, 130:]
    with ShcReader(path) as reader:
        np.testing.assert_array_equal(reader.synthesis(box=box).render(160, 120, box), expected)
        assert reader.bytes_read < len(built.data) // 2
    with path.open("rb") as handle:
        reader = ShcReader(handle)
        np.testing.assert_array_equal(reader.synthesis(box=box).render(160, 120, box), expected)
        assert not handle.closed  # a file object given is left open


def zeroed_from(latents: list[np.ndarray], levels: int) -> list[np.ndarray]:
    """The latents with those of levels ``levels``.. set to 0 (SPEC §6, prefixes)."""
    return [lat if index < levels else np.zeros_like(lat) for index, lat in enumerate(latents)]


@pytest.mark.parametrize("context_width", [0, 4])
def test_prefix_decode_reads_only_the_prefix(context_width: int) -> None:
    """``levels=K`` reads the front and the segments of the first K levels only, and decodes their latents
    exactly (those of the other levels are 0)."""
    built = chunked(latent_dim=1 if context_width else 2, context_width=context_width)
    header = built.header
    front, placed = front_and_segments(built.data)
    renders = set()
    for levels in range(1, 5):
        reader = ShcReader(built.data)
        synthesis = reader.synthesis(96, 72, levels=levels)
        needed = sorted({k for k, segment in enumerate(header.layout.segments) if segment.levels[0] < levels})
        assert reader.bytes_read == front + sum(placed[k][1] for k in needed)
        assert needed == header.layout.segments_for_levels(levels) == {1: [0], 2: [0], 3: list(range(5)),
                                                                         4: list(range(11))}[levels]
        for got, want in zip(ShcReader(built.data).latents(needed, levels), zeroed_from(built.latents, levels)):
            np.testing.assert_array_equal(got, want)
        renders.add(synthesis.render(96, 72).tobytes())
    assert len(renders) == 4  # every level changes the picture


@pytest.mark.parametrize("context_width", [0, 4])
def test_prefix_decode_is_a_full_decode_without_the_finer_levels(context_width: int) -> None:
    """``levels=K`` renders what a full decode renders with the latents of levels K.. set to 0 (SPEC §6: their
    features are then the latent decoder's bias), also through decode_bytes."""
    built = chunked(latent_dim=1 if context_width else 2, context_width=context_width)
    parsed = read_file(built.data)
    width, height = 96, 72
    for levels in range(1, 5):
        expected = Synthesis(parsed, zeroed_from(built.latents, levels)).render(width, height)
        got = ShcReader(built.data).synthesis(width, height, levels=levels).render(width, height)
        np.testing.assert_array_equal(got, expected, err_msg=f"levels={levels}")
        np.testing.assert_array_equal(decode_bytes(built.data, size=(width, height), levels=levels), expected)


def hand_complete_levels(header: Header, placed: list[tuple[int, int]], size: int) -> int:
    """The largest K whose segments (those holding a piece of a level < K) lie whole in ``size`` bytes."""
    complete = 0
    for count in range(1, len(header.level_cells) + 1):
        segments = hand_segments(header.level_cells, header.config.log2_hashmap_size, header.config.latent_dim)
        if all(placed[k][0] + placed[k][1] <= size for k, segment in enumerate(segments)
               if any(level < count for level, _ in segment)):
            complete = count
    return complete


def test_truncated_file_renders_its_complete_levels() -> None:
    """Cut at every segment boundary and a byte either side: read_file (and a full decode) refuse it,
    ShcReader opens it, says how many levels it holds whole, renders exactly the prefix a whole file renders
    from them, and refuses anything that needs a missing byte (SPEC §6: an interrupted download)."""
    built = chunked(latent_dim=1, context_width=4)
    header = built.header
    front, placed = front_and_segments(built.data)
    whole = ShcReader(built.data)
    assert not whole.truncated and whole.complete_levels == 4
    prefixes = {levels: whole.synthesis(48, 36, levels=levels).render(48, 36) for levels in (2, 3)}
    cuts = sorted({end + d for end in [front] + [o + n for o, n in placed] for d in (-1, 0, 1)} - {len(built.data),
                                                                                                 len(built.data) + 1})
    seen = set()
    for cut in cuts:
        data = built.data[:cut]
        with pytest.raises(ShcFormatError, match="truncated"):
            read_file(data)
        with pytest.raises(ShcFormatError, match="truncated"):
            decode_bytes(data)
        if cut < front:  # the front itself is cut: nothing to read
            with pytest.raises(ShcFormatError, match="truncated"):
                ShcReader(data)
            continue
        reader = ShcReader(data)
        complete = hand_complete_levels(header, placed, cut)
        assert reader.truncated and reader.complete_levels == complete, cut
        seen.add(complete)
        if complete:
            np.testing.assert_array_equal(reader.synthesis(48, 36, levels=complete).render(48, 36), prefixes[complete])
            np.testing.assert_array_equal(decode_bytes(data, size=(48, 36), levels=complete), prefixes[complete])
        with pytest.raises(ShcFormatError, match="truncated"):
            reader.synthesis(48, 36, levels=complete + 1)
        with pytest.raises(ShcFormatError, match="truncated"):
            reader.synthesis()
    assert seen == {0, 2, 3}


def test_a_corrupted_segment_spoils_only_the_regions_that_need_it() -> None:
    """One byte changed in the last segment (the bottom-right chunk of level 3): a full decode names that
    segment's CRC; a region away from it still decodes (to the pixels of the intact file), one on it does not."""
    built = chunked()
    _, placed = front_and_segments(built.data)
    offset, length = placed[10]
    data = bytearray(built.data)
    data[offset + length // 2] ^= 0x10
    data = bytes(data)
    with pytest.raises(ShcFormatError, match=r"^latent segment 10 is corrupted \(CRC32 mismatch\)$"):
        read_file(data)
    with pytest.raises(ShcFormatError, match=r"^latent segment 10 is corrupted"):
        decode_bytes(data)
    full = decode_bytes(built.data)
    away = (0, 0, 60, 50)
    assert 10 not in region_segments(built.header.layout, 160, 120, away, kernel=1)
    np.testing.assert_array_equal(ShcReader(data).synthesis(box=away).render(160, 120, away), full[:50, :60])
    np.testing.assert_array_equal(ShcReader(data).synthesis(levels=3).render(160, 120),
                                  ShcReader(built.data).synthesis(levels=3).render(160, 120))
    with pytest.raises(ShcFormatError, match=r"^latent segment 10 is corrupted"):
        ShcReader(data).synthesis(box=(150, 110, 160, 120))
    # segment 0 holds the whole levels: every region needs it
    data0 = bytearray(built.data)
    data0[placed[0][0]] ^= 0x01
    with pytest.raises(ShcFormatError, match=r"^latent segment 0 is corrupted"):
        ShcReader(bytes(data0)).synthesis(box=away)


def test_float16_chunked_file_round_trip() -> None:
    """float16 latents (latent_coding 1) in chunks: per segment its pieces' values, dimension by dimension
    (SPEC §6b); read back exactly, and a region renders the pixels of a full decode."""
    config = ModelConfig(num_levels=3, log2_hashmap_size=18, latent_dim=2, feat_dim=2, mlp_width=6, mlp_depth=1)
    header = Header(90, 75, config, ((4, 3), (400, 350), (600, 500)), C.LATENTS_FLOAT16)
    header.validate()
    assert [level.num_chunks for level in header.layout.levels] == [1, 4, 2]
    rng = np.random.default_rng(8)
    levels = [rng.normal(0, 1.5, (rows, 2)).astype(np.float16) for rows in header.level_rows()]
    segments = pack_float16_latents(header, levels)
    assert len(segments) == 1 + 4 + 2 and all(s.dtype == np.float16 for s in segments)
    for segment, values in zip(header.layout.segments, segments):
        assert values.size == header.layout.segment_latents(segment)
        pieces = [levels[p.level.index][np.arange(p.level.rows) if p.chunk is None else p.level.piece_rows(p.chunk)]
                  for p in segment.pieces]
        np.testing.assert_array_equal(values, np.concatenate([piece.T.reshape(-1) for piece in pieces]))
    shapes_weights = random_weights(rng, header)
    data = write_file(header, shapes_weights, (), segments)
    _, placed = front_and_segments(data)
    assert [length for _, length in placed] == [2 * s.size for s in segments]
    parsed = read_file(data)
    for got, want in zip(file_latents(parsed), levels, strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    for got, want in zip(unpack_float16_latents(header, dict(enumerate(segments))), levels, strict=True):
        np.testing.assert_array_equal(got, want.astype(np.float32))
    full = decode_bytes(data)
    box = (0, 60, 40, 75)  # the bottom-left chunk of level 1, the left chunk of level 2
    reader = ShcReader(data)
    np.testing.assert_array_equal(reader.synthesis(box=box).render(90, 75, box), full[60:, :40])
    assert reader.bytes_read < len(data) * 0.6


@pytest.mark.parametrize("name", V6_NAMES)
def test_version_6_files_decode_through_the_reader(name: str) -> None:
    """A version-6 file is one segment (its LATN payload): ShcReader decodes it in full (the recorded
    pixels), in a region and from a prefix of its levels; cut short it does not open (LATN is incomplete)."""
    data = (COMPAT_DIR / name).read_bytes()
    entry = COMPAT["files"][name]
    reader = ShcReader(io.BytesIO(data))
    header = reader.header
    assert header.version == 6 and len(header.layout.segments) == 1 and not reader.truncated
    assert reader.complete_levels == header.config.num_levels and reader.icc_profile == read_file(data).icc_profile
    width, height = header.width, header.height
    full = reader.synthesis().render(width, height)
    assert hashlib.sha256(full.tobytes()).hexdigest() == entry["decoded_sha256"]
    box = (width // 3, height // 2, width, height)
    np.testing.assert_array_equal(ShcReader(data).synthesis(box=box).render(width, height, box), full[box[1] :, box[0] :])
    parsed = read_file(data)
    latents = file_latents(parsed)
    zeroed = [lat if index < 5 else np.zeros_like(lat) for index, lat in enumerate(latents)]
    np.testing.assert_array_equal(ShcReader(data).synthesis(levels=5).render(width, height),
                                  Synthesis(parsed, zeroed).render(width, height))
    with pytest.raises(ShcFormatError, match="truncated"):
        ShcReader(data[:-5])


def test_the_index_must_list_every_segment() -> None:
    """The LATN payload is exactly 8 bytes per segment of the layout (SPEC §6): one entry less or more, or
    a partial entry, is refused by read_file and by ShcReader before anything is read."""
    built = chunked()
    front, placed = front_and_segments(built.data)
    index = built.data[front - 4 - 8 * 11 : front - 4]
    for payload in (index[:-8], index + index[-8:], index[:-3], index + b"\0", b""):
        data = with_index(built.data, payload)
        match = rf"^LATN section has {len(payload)} bytes, the index of 11 latent segments needs 88$"
        with pytest.raises(ShcFormatError, match=match):
            read_file(data)
        with pytest.raises(ShcFormatError, match=match):
            ShcReader(data)
    # lengths that do not add up to the bytes after LATN: trailing bytes, or a file cut short
    longer = with_index(built.data, index[:-8] + struct.pack("<II", placed[-1][1] + 4, 0))
    with pytest.raises(ShcFormatError, match="truncated"):
        read_file(longer)
    shorter = with_index(built.data, index[:-8] + struct.pack("<II", placed[-1][1] - 4, 0))
    with pytest.raises(ShcFormatError, match="^4 bytes of trailing garbage"):
        ShcReader(shorter)
    with pytest.raises(ShcFormatError):
        read_file(shorter)
