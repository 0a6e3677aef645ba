"""The files the fuzzer mutates: the golden files shipped as package data (:data:`SEEDS_DIR`) and small
synthetic ones built here with numpy only (:func:`synthetic_seeds`), with the random weights, latents and
context networks they are made of.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from shc.format import constants as C
from shc.format.container import ShcFile, read_file, write_file
from shc.format.context import CONTEXT_INPUTS, MAX_BIAS, MAX_WEIGHT, ContextParams
from shc.format.entropy import encode_latents, histogram_tables, pack_float16_latents
from shc.format.header import Header, ModelConfig
from shc.format.weights import QuantizedWeights, weight_shapes
from shc.tools.fuzz.syntax import Sections, assemble, fake_exif, fake_icc, split_file, split_sections

__all__ = [
    "CHUNKED_CELLS",
    "SEEDS_DIR",
    "Seed",
    "default_seeds",
    "parsed_seed",
    "random_context",
    "random_weights",
    "synthetic_seeds",
    "table_latents",
]

SEEDS_DIR = Path(__file__).resolve().parent.parent / "seeds"
"""Valid encoder-made files shipped as package data (copies of the golden files in tests/data), so the
fuzzer finds its seeds in any install, editable or not."""


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes

    @property
    def sections(self) -> Sections | None:
        return split_sections(self.data)

    @property
    def tail(self) -> bytes:
        """What follows the LATN section: a version-7 file's latent segments (empty before version 7)."""
        parts = split_file(self.data)
        return b"" if parts is None else parts[1]

    def rebuild(self, sections: Sections, prefix: bytes | None = None, tail: bytes | None = None) -> bytes:
        """A file of ``sections`` (CRCs re-fixed) after this seed's magic and version (or ``prefix``),
        followed by this seed's latent segments (or ``tail``)."""
        return assemble(sections, self.prefix if prefix is None else prefix, self.tail if tail is None else tail)

    @property
    def prefix(self) -> bytes:
        """Magic and version byte: mutated files keep the seed's version."""
        return self.data[: C.FILE_PREFIX_BYTES]

    @property
    def version(self) -> int:
        return self.data[4] if len(self.data) > 4 else C.FORMAT_VERSION


@functools.lru_cache(maxsize=64)
def parsed_seed(data: bytes) -> ShcFile:
    """The parsed seed (seeds are valid files; parsing a version 4 WGHT section is a Python loop, so cache it)."""
    return read_file(data)


def table_latents(rng: np.random.Generator, header: Header, table_specs: Sequence[tuple[np.ndarray, int]]) -> list[np.ndarray]:
    """Integer latents for a range-coded header, one ``(rows, latent_dim)`` int32 array per level.

    ``table_specs`` gives per table a PMF over ``min_symbol ..`` and ``min_symbol``: the latents each table
    codes are drawn from its PMF, and its lowest and highest symbols are placed once each, so that the
    table's histogram (SPEC §5) spans exactly the PMF's symbols.
    """
    layout = header.layout
    latents = [np.zeros((rows, layout.latent_dim), dtype=np.int32) for rows in header.level_rows()]
    runs: list[list] = [[] for _ in range(layout.num_tables)]
    for run in layout.coding_runs():
        runs[run.table].append(run)
    for index, (pmf, min_symbol) in enumerate(table_specs):
        p = np.asarray(pmf, dtype=np.float64)
        total = sum(run.level.rows for run in runs[index])
        values = min_symbol + rng.choice(p.size, size=total, p=p / p.sum())
        values[0], values[-1] = min_symbol, min_symbol + p.size - 1
        start = 0
        for run in runs[index]:
            latents[run.level.index][:, run.dim] = values[start : start + run.level.rows]
            start += run.level.rows
    return latents


def _synthetic_file(
    rng: np.random.Generator,
    width: int,
    height: int,
    config: ModelConfig,
    cells: tuple[tuple[int, int], ...],
    table_specs: list[tuple[np.ndarray, int]],
    weight_limit: int = C.WEIGHT_INT_MAX,
    **metadata: bytes,
) -> bytes:
    header = Header(width, height, config, cells)
    header.validate()
    latents = table_latents(rng, header, table_specs)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header, weight_limit)
    return write_file(header, weights, tables, encode_latents(header, tables, latents), **metadata)


def random_weights(rng: np.random.Generator, header: Header, limit: int = C.WEIGHT_INT_MAX) -> QuantizedWeights:
    """Valid weights for ``header``: integers in ``[-limit, limit]`` (int64), with small random steps scaled
    so that the weights stay about as large as int8 ones with steps in [0.002, 0.02]."""
    shapes = weight_shapes(header)
    scales = (rng.uniform(0.002, 0.02, len(shapes)) * C.WEIGHT_INT_MAX / limit).astype(np.float32)
    values = rng.integers(-limit, limit + 1, sum(int(np.prod(shape)) for _, shape in shapes)).astype(np.int64)
    return QuantizedWeights(scales, values)


def random_context(rng: np.random.Generator, header: Header, latents: list[np.ndarray]) -> ContextParams:
    """A valid context network (SPEC §5a) for ``header``'s context levels, whose ranges are those of
    ``latents``: weights that spread the predictions over several centres and many scale buckets, and
    hidden unit 0 holding the extreme values (``MAX_WEIGHT`` and ``-MAX_BIAS``) but never firing."""
    width = header.config.context_width
    levels = header.layout.context_levels
    w1 = rng.integers(-3 << 12, (3 << 12) + 1, (width, CONTEXT_INPUTS))
    b1 = rng.integers(-8 << 12, (8 << 12) + 1, width)
    w2 = np.stack([rng.integers(-512, 513, width), rng.integers(-256, 257, width)])
    w1[0], b1[0] = MAX_WEIGHT, -MAX_BIAS  # h_0 = max(2^20 (x_1 + .. + x_6 - x_0) - 2^27, 0): 0 while that sum < 128
    w1[0, 0] = -MAX_WEIGHT
    w2[:, 0] = [MAX_WEIGHT, -MAX_WEIGHT]
    bias = np.stack([rng.integers(-4096, 4097, len(levels)), rng.integers(-8192, 8193, len(levels))], axis=1)
    values = [np.asarray(latents[level.index][:, 0], dtype=np.int64) for level in levels]
    low = np.array([int(v.min()) for v in values], dtype=np.int64)
    span = np.array([int(v.max()) - int(v.min()) + 1 for v in values], dtype=np.int64)
    return ContextParams(w1.astype(np.int64), b1.astype(np.int64), w2.astype(np.int64), bias.astype(np.int64),
                         low, span)


def _synthetic_context_file(rng: np.random.Generator) -> bytes:
    """Version 6 with a context network: six levels (dense, dense, hashed, dense, hashed, dense) in five
    groups. Levels 1, 3 and 5 are context levels (level 3's parent is hashed; level 5's latents are all
    equal: span 1, nothing coded), so groups 2 and 4 have no table and the tables are those of groups 0, 1
    and 3."""
    config = ModelConfig(num_levels=6, log2_hashmap_size=5, mlp_width=6, mlp_depth=1, num_groups=5,
                         interpolation=C.INTERPOLATION_BSPLINE, context_width=6)
    header = Header(28, 20, config, ((2, 1), (4, 3), (9, 7), (5, 4), (12, 9), (3, 3)))
    header.validate()
    laplace = np.exp(-np.abs(np.arange(-6, 7)) / 1.5)
    latents = table_latents(rng, header, [(laplace, -6), (np.array([1, 3, 1.0]), -1), (laplace, -6)])
    for level in header.layout.context_levels:
        scale = 0.3 + 2.0 * rng.random(level.rows)  # rows of very different scales: the buckets differ
        values = np.clip(np.rint(rng.laplace(0.0, scale)), -9, 9).astype(np.int32)
        latents[level.index][:, 0] = 2 if level.index == 5 else values
    context = random_context(rng, header, latents)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header)
    return write_file(header, weights, tables, encode_latents(header, tables, latents, context), context=context)


CHUNKED_CELLS = ((10, 8), (100, 80), (400, 350), (1100, 900))
"""The level cells of the chunked seed (SPEC §4a with T = 18): levels 0 and 1 whole (99 and 8,181 rows), level
2 dense with 401 x 351 vertices (more than 2^17 rows) in 2 x 2 chunks of 256^2, level 3 hashed (1101 x 901
vertices into 2^18 rows) in 3 x 2 chunks of 512^2 vertices with 43,690 rows each: 1 + 4 + 6 = 11 segments."""


def _synthetic_chunked_file(rng: np.random.Generator) -> bytes:
    """Version 7 with chunked levels (:data:`CHUNKED_CELLS`), 240 x 200 pixels, two groups, the B-spline and
    a context network on level 1 (whole, as are its coarser levels: SPEC §5a): eleven segments. The
    factorized latents are mostly 0 (the file is about 10 KB), the context level's spread."""
    config = ModelConfig(num_levels=4, log2_hashmap_size=18, mlp_width=6, mlp_depth=1, num_groups=2,
                         interpolation=C.INTERPOLATION_BSPLINE, context_width=4)
    header = Header(240, 200, config, CHUNKED_CELLS)
    header.validate()
    sparse = np.array([0.002, 0.01, 0.976, 0.01, 0.002])
    latents = table_latents(rng, header, [(sparse, -2), (sparse, -2)])
    for level in header.layout.context_levels:
        latents[level.index][:, 0] = np.clip(np.rint(rng.laplace(0.0, 1.0, level.rows)), -6, 6).astype(np.int32)
    context = random_context(rng, header, latents)
    tables = histogram_tables(header, latents)
    weights = random_weights(rng, header)
    return write_file(header, weights, tables, encode_latents(header, tables, latents, context), context=context)


def synthetic_seeds() -> list[Seed]:
    """Five small valid files covering what the golden files do not (deterministic, built with numpy only):
    a hashed level with several tables, a 4096-symbol table (and weights up to ``WEIGHT_CODE_MAX``),
    float16 (no-entropy) latents, an RGBA file with a META section (both entries), and a context network
    (SPEC §5a) over dense levels between hashed ones, with groups that have no table."""
    rng = np.random.default_rng(20240501)
    laplace = np.exp(-np.abs(np.arange(-20, 20)) / 3.0)
    hashed = _synthetic_file(
        rng,
        32,
        24,
        ModelConfig(
            num_levels=3, log2_hashmap_size=4, latent_dim=2, feat_dim=2, mlp_width=8, mlp_depth=1, num_groups=2
        ),
        ((2, 1), (5, 4), (9, 7)),  # 6 dense rows, then 30 and 80 vertices hashed into 16 rows each
        [(np.ones(1), 0), (np.array([1, 2, 5, 9, 5, 2, 1.0]), -3), (np.array([3, 1.0]), 0), (laplace, -20)],
    )
    wide = _synthetic_file(
        rng,
        16,
        16,
        ModelConfig(num_levels=1, log2_hashmap_size=8, latent_dim=1, feat_dim=1, mlp_width=4, mlp_depth=0),
        ((8, 8),),
        [(np.exp(-np.abs(np.arange(-2048, 2048)) / 40.0), -2048)],
        weight_limit=C.WEIGHT_CODE_MAX,
    )
    # the no-entropy variant: float16 latents, no tables
    raw_header = Header(20, 12, ModelConfig(num_levels=2, log2_hashmap_size=5, mlp_width=4, mlp_depth=1),
                        ((3, 2), (8, 5)), C.LATENTS_FLOAT16)
    raw_weights = random_weights(rng, raw_header)
    raw_levels = [rng.normal(0, 3, (rows, 1)) for rows in raw_header.level_rows()]
    raw = write_file(raw_header, raw_weights, (), pack_float16_latents(raw_header, raw_levels))
    rgba = _synthetic_file(
        rng, 12, 10, ModelConfig(num_levels=2, log2_hashmap_size=5, mlp_width=4, mlp_depth=1, channels=C.CHANNELS_RGBA),
        ((2, 2), (6, 5)), [(np.array([1, 4, 1.0]), -1)], icc_profile=fake_icc(rng), exif=fake_exif(rng),
    )
    context = _synthetic_context_file(rng)
    chunked = _synthetic_chunked_file(rng)
    return [Seed("synthetic_hashed", hashed), Seed("synthetic_table4096", wide), Seed("synthetic_float16", raw),
            Seed("synthetic_rgba_meta", rgba), Seed("synthetic_context", context), Seed("synthetic_chunked", chunked)]


def default_seeds() -> list[Seed]:
    """The shipped seed files (:data:`SEEDS_DIR`) followed by :func:`synthetic_seeds`."""
    golden = [Seed(path.name, path.read_bytes()) for path in sorted(SEEDS_DIR.glob("*.shc"))]
    return golden + synthetic_seeds()
