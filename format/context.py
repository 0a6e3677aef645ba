"""The context model of format version 6 (SPEC §5a): each latent of a dense level coded under a discrete
Laplace whose centre and scale a small integer network predicts from what the decoder already has.

Why: latents trained under a factorized prior are coded as if independent, but a fine level's latents are
large where the picture has detail and near zero elsewhere, and neighbouring vertices share that: a latent's
neighbours and the coarser levels at the same place tell its scale. The encoder fits the network to its
trained latents (:mod:`shc.codec.context`, the same network in floats) and keeps it when the file gets
smaller; what that saves, and why training the latents under it did not pay yet: results/context/README.md.

Each dense level l >= 1 (a "context level") is coded in two vectorised passes, a checkerboard: the anchors
(vertices with x + y even) see the two coarser levels at the nearest vertex; the others see also their four
anchor neighbours. Everything here is integer arithmetic on int64 (no float reaches the coder), in one numpy
function per step that the encoder calls too, so a file decodes bit-exactly on every machine:

    inputs x (7 ints)   = left, right, up, down, parent, grandparent, anchor flag
    h      = max(W1 x + b1, 0)                          (12 fractional bits)
    out    = ((W2 h) >> 12) + level_bias                (12 fractional bits: mean, log2 scale)
    centre = clip((mean + 2048) >> 12, lo, hi);  bucket = clip((log2scale + 16640) >> 9, 0, 88)
    symbol = latent - centre, coded with the integer table of (bucket, level span)

The tables are discrete Laplace distributions built in integers from :data:`LAPLACE_T`.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import constriction
import numpy as np

from shc.format import constants as C
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, BitReader, best_order, zigzag
from shc.format.table import Table

__all__ = [
    "CONTEXT_INPUTS",
    "CONTEXT_TENSORS",
    "ContextParams",
    "context_codes",
    "context_counts",
    "context_inputs",
    "context_level_bits",
    "context_sources",
    "coarser_latents",
    "decode_context_level",
    "encode_context_level",
    "pass_vertices",
    "predict",
    "read_context",
]

CONTEXT_INPUTS = 7
"""Inputs of the context network: left, right, up, down neighbours, parent, grandparent, anchor flag."""
FRACTION_BITS = 12
"""Fixed point of the network's weights, hidden values and outputs (units of 1/4096; 1/256 moved a
trained network's rates by up to 75 %)."""
INPUT_LIMIT = 1 << 10
"""Inputs are latents clamped to [-INPUT_LIMIT, INPUT_LIMIT]."""
MAX_WEIGHT = 1 << 20
"""|W1|, |W2| <= MAX_WEIGHT; |b1|, |level_bias| <= MAX_BIAS: hidden values stay below 2^33 and every sum
below 2^59 (int64)."""
MAX_BIAS = 1 << 27
MAX_LEVEL_SPAN = (C.MAX_TABLE_SYMBOLS + 1) // 2
"""A context level's latents span at most this many values, so its symbols (latent - centre) fit one table."""
SCALE_MIN_LOG2 = -4
"""Bucket j has the Laplace scale b_j = 2^(SCALE_MIN_LOG2 + j / 8): 1/8 octave steps, b = 1/16 .. 128."""
SCALE_STEPS_PER_OCTAVE = 8
NUM_SCALE_BUCKETS = 89
LAPLACE_ONE = 1 << 30
LAPLACE_T = (
    360200, 699683, 1286253, 2248046, 3751106, 5998723, 9226469, 13692852, 19666268, 27409473, 37163206,
    49130656, 63464312, 80256339, 99533137, 121254227, 145315154, 171553775, 199759078, 229681607, 261044606,
    293555085, 326914198, 360826461, 395007542, 429190474, 463130302, 496607237, 529428476, 561428867,
    592470630, 622442337, 651257337, 678851797, 705182512, 730224596, 753969162, 776421055, 797596699,
    817522092, 836230973, 853763180, 870163178, 885478791, 899760092, 913058465, 925425813, 936913903,
    947573834, 957455604, 966607779, 975077234, 982908970, 990145980, 996829173, 1002997330, 1008687096,
    1013932999, 1018767490, 1023220997, 1027321989, 1031097062, 1034571010, 1037766921, 1040706261,
    1043408965, 1045893524, 1048177074, 1050275481, 1052203421, 1053974460, 1055601130, 1057095000,
    1058466743, 1059726201, 1060882446, 1061943836, 1062918069, 1063812229, 1064632840, 1065385899,
    1066076925, 1066710993, 1067292768, 1067826536, 1068316239, 1068765495, 1069177631, 1069555701,
)
"""``round(2^30 exp(-1 / (2 b_j)))`` for every bucket: the discrete Laplace of scale b_j, P(0) = 1 - t and
P(+-s) = t^(2s - 1) (1 - t^2) / 2, in integers (the literal values are normative; SPEC §5a)."""
BUCKET_OFFSET = -SCALE_MIN_LOG2 * (1 << FRACTION_BITS) + (1 << (FRACTION_BITS - 4))
"""``bucket = (log2scale + BUCKET_OFFSET) >> 9``: the nearest 1/8 octave (16640 = 4 * 4096 + 256)."""


@dataclass(frozen=True)
class ContextParams:
    """The integers of a file's context network and, per context level, its output bias and latent range."""

    w1: np.ndarray  # int64 (width, CONTEXT_INPUTS)
    b1: np.ndarray  # int64 (width,)
    w2: np.ndarray  # int64 (2, width)
    level_bias: np.ndarray  # int64 (context levels, 2): centre, log2 scale, 12 fractional bits
    level_low: np.ndarray  # int64 (context levels,): smallest latent of the level
    level_span: np.ndarray  # int64 (context levels,): largest - smallest + 1, 1 .. MAX_LEVEL_SPAN

    @property
    def width(self) -> int:
        return int(self.b1.size)

    def validate(self, width: int, levels: int) -> None:
        """Shapes and bounds; raises :class:`ShcFormatError` (what the reader and the writer both check)."""
        shapes = {"w1": (width, CONTEXT_INPUTS), "b1": (width,), "w2": (2, width), "level_bias": (levels, 2),
                  "level_low": (levels,), "level_span": (levels,)}
        for name, shape in shapes.items():
            if getattr(self, name).shape != shape:
                msg = f"context model {name} has shape {getattr(self, name).shape}, expected {shape}"
                raise ShcFormatError(msg)
        for name, bound in (("w1", MAX_WEIGHT), ("w2", MAX_WEIGHT), ("b1", MAX_BIAS), ("level_bias", MAX_BIAS)):
            values = getattr(self, name)
            if values.size and int(np.abs(values).max()) > bound:
                msg = f"context model {name} has a value outside [-{bound}, {bound}]"
                raise ShcFormatError(msg)
        high = self.level_low + self.level_span - 1
        if levels and (self.level_span.min() < 1 or self.level_span.max() > MAX_LEVEL_SPAN
                       or self.level_low.min() < C.MIN_SYMBOL or high.max() > C.MAX_SYMBOL):
            msg = f"a context level's latent range is empty, wider than {MAX_LEVEL_SPAN} or outside the symbol range"
            raise ShcFormatError(msg)


CONTEXT_TENSORS = ("w1", "b1", "w2", "level_bias")
"""The context network's integer tensors in TABL order (SPEC §5a), each with its own exp-Golomb order."""


def context_codes(params: ContextParams) -> list[tuple[np.ndarray, int]]:
    """The exp-Golomb codes of a context network (SPEC §5a): per tensor EG0(order) and its values' signed
    codes of that order; then per context level zigzag-EG0(low) and EG0(span - 1)."""
    codes = []
    for name in CONTEXT_TENSORS:
        unsigned = zigzag(getattr(params, name).reshape(-1))
        order = best_order(unsigned)
        codes += [(np.array([order]), 0), (unsigned, order)]
    ranges = np.stack([zigzag(params.level_low), params.level_span - 1], axis=1).reshape(-1)
    return [*codes, (ranges, 0)]


def read_context(bits: BitReader, width: int, levels: int) -> ContextParams:
    """The syntax of :func:`context_codes`, every size bounded by the header; bounds checked."""
    shapes = {"w1": (width, CONTEXT_INPUTS), "b1": (width,), "w2": (2, width), "level_bias": (levels, 2)}
    values = {}
    for name in CONTEXT_TENSORS:
        order = bits.unsigned(0, f"context {name} order")
        if order > MAX_ORDER:
            msg = f"TABL section: context {name} order {order} is above {MAX_ORDER}"
            raise ShcFormatError(msg)
        values[name] = bits.signed_array(int(np.prod(shapes[name])), order, f"context {name}").reshape(shapes[name])
    low = np.zeros(levels, dtype=np.int64)
    span = np.zeros(levels, dtype=np.int64)
    for slot in range(levels):
        low[slot] = bits.signed(0, f"context level {slot} low")
        span[slot] = bits.unsigned(0, f"context level {slot} span") + 1
    params = ContextParams(level_low=low, level_span=span, **values)
    params.validate(width, levels)
    return params


CHUNK_VERTICES = 1 << 16
"""Inputs are made for about this many vertices at a time (bounded memory at any level size)."""


def _nearest(vertices: np.ndarray, cells: int, coarse_cells: int) -> np.ndarray:
    """The coarse level's vertex nearest to each vertex along one axis: round(v * coarse / cells), half up."""
    return np.minimum((2 * vertices * coarse_cells + cells) // (2 * cells), coarse_cells)


def pass_vertices(level, anchors: bool):
    """The vertices ``(x, y)`` of one pass over a context level, in coding (row-major) order, in chunks of
    whole vertex rows: the anchors (``x + y`` even) or the others."""
    rows_per_chunk = max(1, CHUNK_VERTICES // (level.nx + 1))
    x = np.arange(level.nx + 1, dtype=np.int64)[None, :]
    for top in range(0, level.ny + 1, rows_per_chunk):
        y = np.arange(top, min(level.ny + 1, top + rows_per_chunk), dtype=np.int64)[:, None]
        select = ((x + y) % 2 == 0) == anchors
        yield np.broadcast_to(x, select.shape)[select], np.broadcast_to(y, select.shape)[select]


SOURCE_LEVELS = (0, 0, 0, 0, 1, 2)
"""Which level each of the first six inputs reads: the context level itself (the four neighbours), its
parent (one level coarser) and its grandparent (two levels coarser)."""


def context_sources(levels: tuple, index: int, x: np.ndarray, y: np.ndarray, anchors: bool) -> np.ndarray:
    """Rows ``(n, 6)`` (int64, -1: none) that the first six inputs of vertices ``(x, y)`` of context level
    ``index`` read, each in its level of :data:`SOURCE_LEVELS` (SPEC §5a): the four neighbours left, right,
    up, down (non-anchors only, inside the grid), then the parent and grandparent level's vertex nearest
    to the same position."""
    level = levels[index]
    rows = np.full((x.size, 6), -1, dtype=np.int64)
    if not anchors:
        row = y * (level.nx + 1) + x
        rows[:, 0] = np.where(x > 0, row - 1, -1)
        rows[:, 1] = np.where(x < level.nx, row + 1, -1)
        rows[:, 2] = np.where(y > 0, row - (level.nx + 1), -1)
        rows[:, 3] = np.where(y < level.ny, row + (level.nx + 1), -1)
    for k, back in ((4, 1), (5, 2)):
        if index - back >= 0:
            up = levels[index - back]
            rows[:, k] = up.vertex_rows(_nearest(x, level.nx, up.nx), _nearest(y, level.ny, up.ny))
    return rows


def coarser_latents(latents: list[np.ndarray], index: int) -> tuple[np.ndarray, np.ndarray]:
    """The parent and grandparent inputs' sources of context level ``index``: latent dimension 0 (int64) of
    levels ``index - 1`` and ``index - 2`` of per-level ``(rows, D)`` latents (empty before level 0)."""
    return tuple(np.asarray(latents[index - back][:, 0], dtype=np.int64) if index - back >= 0
                 else np.zeros(0, dtype=np.int64) for back in (1, 2))


def context_inputs(levels: tuple, index: int, x: np.ndarray, y: np.ndarray, values: np.ndarray,
                   coarser: tuple[np.ndarray, np.ndarray], anchors: bool) -> np.ndarray:
    """Integer inputs ``(n, 7)`` of vertices ``(x, y)`` of context level ``index``: the latents at
    :func:`context_sources` (0 where there is none; of ``values`` only anchors are read, of ``coarser`` the
    parent and grandparent levels), then the anchor flag; clamped to +-INPUT_LIMIT."""
    rows = context_sources(levels, index, x, y, anchors)
    sources = (values, values, values, values, *coarser)
    out = np.zeros((x.size, CONTEXT_INPUTS), dtype=np.int64)
    for k, source in enumerate(sources):
        present = rows[:, k] >= 0
        if present.any():
            out[:, k] = np.where(present, source[np.where(present, rows[:, k], 0)], 0)
    out[:, 6] = 1 if anchors else 0
    return np.clip(out, -INPUT_LIMIT, INPUT_LIMIT)


def predict(params: ContextParams, slot: int, inputs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The centre (int64, in the level's range) and scale bucket of each row of ``inputs`` for context
    level ``slot``: the normative integer network (SPEC §5a)."""
    hidden = np.maximum(inputs @ params.w1.T + params.b1, 0)
    out = ((hidden @ params.w2.T) >> FRACTION_BITS) + params.level_bias[slot]
    low = int(params.level_low[slot])
    centre = np.clip((out[:, 0] + (1 << (FRACTION_BITS - 1))) >> FRACTION_BITS, low, low + int(params.level_span[slot]) - 1)
    bucket = np.clip((out[:, 1] + BUCKET_OFFSET) >> (FRACTION_BITS - 3), 0, NUM_SCALE_BUCKETS - 1)
    return centre, bucket


@lru_cache(maxsize=1024)
def context_counts(bucket: int, span: int) -> np.ndarray:
    """Integer counts (uint32, each >= 1, summing to 2^15) of the symbols ``-(span - 1) .. span - 1`` under
    the discrete Laplace of ``bucket``: weights ``2 (ONE - t)`` at 0 and ``(t^(2s - 1) (ONE - t^2)) >> 30``
    at +-s (``t^k`` by repeated ``(a t) >> 30``), normalized like a histogram (SPEC §5)."""
    t = LAPLACE_T[bucket]
    powers = [LAPLACE_ONE]
    for _ in range(max(2 * span - 2, 2)):
        powers.append((powers[-1] * t) >> 30)
    one_minus_t2 = LAPLACE_ONE - powers[2]
    side = [(powers[2 * s - 1] * one_minus_t2) >> 30 for s in range(1, span)]
    weights = np.array(side[::-1] + [2 * (LAPLACE_ONE - t)] + side, dtype=np.int64)
    counts = Table.from_histogram(-(span - 1), weights).counts
    counts.setflags(write=False)
    return counts


@lru_cache(maxsize=1024)
def _model(bucket: int, span: int) -> constriction.stream.model.Categorical:
    probabilities = context_counts(bucket, span).astype(np.float64) / float(1 << C.TABLE_PRECISION)
    return constriction.stream.model.Categorical(probabilities, perfect=False)


def _groups(bucket: np.ndarray):
    """Positions of each bucket's symbols, buckets in increasing order, positions in pass order."""
    order = np.argsort(bucket, kind="stable")
    sorted_buckets = bucket[order]
    starts = np.flatnonzero(np.r_[True, sorted_buckets[1:] != sorted_buckets[:-1]]) if order.size else []
    for start, stop in zip(starts, [*starts[1:], order.size]):
        yield int(sorted_buckets[start]), order[start:stop]


def _predict_pass(params: ContextParams, slot: int, levels: tuple, index: int, values: np.ndarray,
                  coarser: tuple[np.ndarray, np.ndarray], anchors: bool):
    """Row-major flat indices, centres and buckets of one pass over a context level."""
    level = levels[index]
    rows, centres, buckets = [], [], []
    for x, y in pass_vertices(level, anchors):
        centre, bucket = predict(params, slot, context_inputs(levels, index, x, y, values, coarser, anchors))
        rows.append(y * (level.nx + 1) + x)
        centres.append(centre)
        buckets.append(bucket.astype(np.uint8))
    return np.concatenate(rows), np.concatenate(centres), np.concatenate(buckets)


def context_level_bits(params: ContextParams, slot: int, levels: tuple, index: int, values: np.ndarray,
                       coarser: tuple[np.ndarray, np.ndarray]) -> float:
    """Ideal cost in bits of a context level's ``values`` under its integer tables: ``-log2(c_s / 2^15)``
    summed (what :func:`encode_context_level` achieves, up to the coder's few bytes of flushing)."""
    span, low = int(params.level_span[slot]), int(params.level_low[slot])
    if values.size and (values.min() < low or values.max() > low + span - 1):
        msg = f"level {index} latents lie outside its context range [{low}, {low + span - 1}]"
        raise ValueError(msg)
    if span == 1:
        return 0.0
    total = 0.0
    for anchors in (True, False):
        rows, centre, bucket = _predict_pass(params, slot, levels, index, values, coarser, anchors)
        symbols = values[rows] - centre + (span - 1)
        for b, positions in _groups(bucket):
            counts = context_counts(b, span).astype(np.float64)
            total += float(np.sum(C.TABLE_PRECISION - np.log2(counts[symbols[positions]])))
    return total


def encode_context_level(encoder, params: ContextParams, slot: int, levels: tuple, index: int,
                         values: np.ndarray, coarser: tuple[np.ndarray, np.ndarray]) -> None:
    """Code a context level's integer ``values`` (row-major, within the level's range): anchors, then the
    others; in each pass the symbols grouped by bucket (increasing), in row order within a group."""
    span = int(params.level_span[slot])
    if span == 1:
        return  # one value: nothing to code
    for anchors in (True, False):
        rows, centre, bucket = _predict_pass(params, slot, levels, index, values, coarser, anchors)
        symbols = values[rows] - centre + (span - 1)
        for b, positions in _groups(bucket):
            encoder.encode(symbols[positions].astype(np.int32), _model(b, span))


def decode_context_level(decoder, params: ContextParams, slot: int, levels: tuple, index: int,
                         coarser: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """Inverse of :func:`encode_context_level`: the level's latents (int64, row-major)."""
    span = int(params.level_span[slot])
    low = int(params.level_low[slot])
    values = np.full(levels[index].rows, low, dtype=np.int64)
    if span == 1:
        return values
    for anchors in (True, False):
        rows, decoded, bucket = _predict_pass(params, slot, levels, index, values, coarser, anchors)
        for b, positions in _groups(bucket):
            decoded[positions] += decoder.decode(_model(b, span), positions.size).astype(np.int64) - (span - 1)
        if decoded.size and (decoded.min() < low or decoded.max() > low + span - 1):
            msg = "LATN section: a context-coded latent falls outside its level's range (corrupted data)"
            raise ShcFormatError(msg)
        values[rows] = decoded
    return values
