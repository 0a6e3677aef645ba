"""Synthesis: the continuous image a parsed file describes, rendered at any size (SPEC §7; numpy only).

Integer latents -> per-level feature tables (the latent decoder on each stored row, float32 in a stated
order) -> per pixel, the separable blend of the vertex rows around it on every level (float32, stated order)
-> the fixed-point MLP (:mod:`shc.format.mlp`, exact integer sums) -> ``rint(255 * clip(v, 0, 1))``. Every
step is per pixel and bit-exact, so the output is the same bytes on every machine, in any tiling, crop or
number of threads. :mod:`shc.format.reader` builds a :class:`Synthesis` from a whole or partial file;
:mod:`shc.format.decoder` is the one-call entry on top of both.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.container import ShcFile
from shc.format.grid import axis_taps
from shc.format.mlp import FixedPointLayer, FixedPointMLP, Workspace

__all__ = ["AxisTaps", "Synthesis", "bounded_features", "feature_table", "mlp_of", "render_threads", "to_uint8"]


@dataclass(frozen=True)
class AxisTaps:
    """One level's interpolation taps along one axis for a run of output positions."""

    vertices: np.ndarray
    """The distinct vertex indices the positions touch, ascending."""
    at: np.ndarray
    """``(taps, n)``: for each tap and position, the index into ``vertices``."""
    weights: np.ndarray
    """``(taps, n)`` float32 weights (SPEC §7)."""


class Synthesis:
    """Renders the continuous image that a parsed file describes, at any resolution (float32 numpy)."""

    def __init__(
        self, shc_file: ShcFile, latents: list[np.ndarray], known_rows: list[np.ndarray | None] | None = None,
        levels: int | None = None,
    ) -> None:
        """``shc_file``: a parsed file (only its header and weights are used), ``latents``: per level.
        ``known_rows``: per level, the rows a partial decode filled (None: all); a region renders from those
        only, so the others' features are never computed (nor their memory touched). ``levels``: render
        from the first ``levels`` levels, the others' latents taken as 0 (SPEC §6)."""
        self.header = shc_file.header
        self.layout = self.header.layout
        tensors = shc_file.weights.tensors(self.header)
        # float32(code) * step, one IEEE multiplication: QuantizedWeights.dequantized, for these two tensors
        dec_w, dec_b = (codes.astype(np.float32) * step for codes, step in
                        (tensors["latent_decoder.weight"], tensors["latent_decoder.bias"]))
        self.latent_decoder = (dec_w, dec_b)
        # the features of a zero latent: those of every vertex of a level outside a prefix (SPEC §6)
        self.zero_features = feature_table(dec_w, dec_b, np.zeros((1, dec_w.shape[1]), np.float32))[:, 0]
        # The latent decoder is linear, so it is applied once per stored row rather than per pixel.
        # The bias is added in place: a temporary copy would double the peak memory of large tables.
        self.feature_tables_t = []  # per level (F, rows): channels first, like everything after it
        for index, lat in enumerate(latents):
            rows = None if known_rows is None else known_rows[index]
            if levels is not None and index >= levels:
                # a level outside the prefix: zero latents, whose features are the bias (w * 0 + b), read-only
                self.feature_tables_t.append(np.broadcast_to(self.zero_features[:, None], (dec_b.size, lat.shape[0])))
            elif rows is None:
                self.feature_tables_t.append(feature_table(dec_w, dec_b, lat))
            else:
                table = np.zeros((dec_w.shape[0], lat.shape[0]), dtype=np.float32)  # pages untouched stay unmapped
                table[:, rows] = feature_table(dec_w, dec_b, lat[rows])
                self.feature_tables_t.append(table)
        self.network = mlp_of(tensors, self.header.config.mlp_depth)
        self.threads: int | None = None
        """Threads :meth:`render_strips` uses (None: one per core, at most 4); the pixels never depend on it."""

    def prefix(self, levels: int) -> Synthesis:
        """This synthesis from its first ``levels`` levels only (SPEC §6: the others' latents 0, so their
        features are the latent decoder's bias); shares the tables, copies nothing large."""
        view = copy.copy(self)
        bias = self.zero_features[:, None]
        view.feature_tables_t = [table if index < levels else np.broadcast_to(bias, table.shape)
                                 for index, table in enumerate(self.feature_tables_t)]
        return view

    def features(self, width: int, height: int, columns: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Concatenated level features ``(num_levels * feat_dim, n)`` (channels first) of the ``n`` pixels
        ``(columns[k], rows[k])`` of a ``width x height`` output; point by point, with exactly the
        arithmetic of :meth:`tile_features`."""
        cfg = self.header.config
        out = np.empty((cfg.num_levels, cfg.feat_dim, np.size(columns)), dtype=np.float32)
        for level in self.layout.levels:
            vx, wx = axis_taps(width, level.nx, columns, cfg.interpolation)
            vy, wy = axis_taps(height, level.ny, rows, cfg.interpolation)
            table = self.feature_tables_t[level.index]
            result = None
            for ty in range(vy.shape[0]):
                along_x = table[:, level.vertex_rows(vx[0], vy[ty])] * wx[0]
                for tx in range(1, vx.shape[0]):
                    along_x = along_x + table[:, level.vertex_rows(vx[tx], vy[ty])] * wx[tx]
                result = along_x * wy[ty] if result is None else result + along_x * wy[ty]
            out[level.index] = result
        return out.reshape(-1, np.size(columns))

    def axis_taps(self, size: int, positions: np.ndarray, axis: int) -> list[AxisTaps]:
        """Per level, the taps of output positions ``positions`` along ``axis`` (0: x, 1: y) of an output
        ``size`` pixels long: the distinct vertices they touch, and per tap the index into those and the
        weight. A tile's columns are the same for every row of tiles, so :meth:`render_strips` computes
        them once."""
        taps = []
        kernel = self.header.config.interpolation
        for level in self.layout.levels:
            vertices, weights = axis_taps(size, level.ny if axis else level.nx, positions, kernel)
            # only the vertices the positions touch: a level far finer than the output must not make the
            # block larger than the tile
            distinct, at = np.unique(vertices, return_inverse=True)
            taps.append(AxisTaps(distinct, at.reshape(vertices.shape), weights))
        return taps

    def tile_features(
        self, width: int, height: int, columns: np.ndarray, rows: np.ndarray,
        column_taps: list[AxisTaps] | None = None,
    ) -> np.ndarray:
        """Features ``(L * F, len(rows) * len(columns))`` (channels first) of the pixels ``rows x columns``
        (row-major) of a ``width x height`` output (``column_taps``: :meth:`axis_taps` of the columns, if
        already known).

        Separable (SPEC §7): on each level, blend along x on the vertex rows the tile touches (taps summed
        in order), then along y, in float32 - about ``taps * (vertex rows + rows) * cols`` multiply-adds
        per level instead of ``taps**2`` gathers per pixel.
        """
        cfg = self.header.config
        num_rows, num_cols = np.size(rows), np.size(columns)
        out = np.empty((cfg.num_levels, cfg.feat_dim, num_rows, num_cols), dtype=np.float32)
        x_taps = column_taps if column_taps is not None else self.axis_taps(width, columns, 0)
        y_taps = self.axis_taps(height, rows, 1)
        for level, x, y in zip(self.layout.levels, x_taps, y_taps):
            block = self.feature_tables_t[level.index][:, level.vertex_rows(x.vertices[None, :], y.vertices[:, None])]
            # in place (the same float32 operations in the same order as a + b * w, without temporaries the
            # size of the tile: fresh large buffers cost page faults on every tile)
            along_x = block[:, :, x.at[0]]  # (F, |y vertices|, cols)
            along_x *= x.weights[0]
            for tap in range(1, x.at.shape[0]):
                term = block[:, :, x.at[tap]]
                term *= x.weights[tap]
                along_x += term
            result = out[level.index]
            np.multiply(along_x[:, y.at[0]], y.weights[0][:, None], out=result)
            for tap in range(1, y.at.shape[0]):
                term = along_x[:, y.at[tap]]
                term *= y.weights[tap][:, None]
                result += term
        return out.reshape(-1, num_rows * num_cols)

    def mlp(self, h: np.ndarray) -> np.ndarray:
        """RGB or RGBA ``(channels, n)`` float64 of float32 features ``(L * F, n)`` (channels first): the
        fixed-point MLP of SPEC §7 step 5 (:class:`~shc.format.mlp.FixedPointMLP`), exact up to one
        rounding per layer, so the same bits on every machine and in every tiling. The pixels go through
        in chunks of ``MLP_CHUNK_PIXELS`` (their activations stay in cache: ~1.4x faster than whole tiles)."""
        n = h.shape[1]
        out = np.empty((self.network.outputs, n), dtype=np.float64)
        work = Workspace(self.network, min(n, C.MLP_CHUNK_PIXELS))
        for start in range(0, n, C.MLP_CHUNK_PIXELS):
            stop = min(n, start + C.MLP_CHUNK_PIXELS)
            self.network.run(h[:, start:stop], work, out[:, start:stop])
        return out

    def render(self, width: int, height: int, box: tuple[int, int, int, int] | None = None) -> np.ndarray:
        """8-bit ``(height, width, channels)`` (RGB or RGBA) at the requested resolution; with ``box = (left,
        top, right, bottom)``, only that region of the ``width x height`` rendering (the same pixels, at a
        cost that grows with the region, not the image)."""
        left, top, right, bottom = _check_box(box, width, height)
        image = np.empty((bottom - top, right - left, self.header.config.channels), dtype=np.uint8)
        for y0, strip in self.render_strips(width, height, box):
            image[y0 - top : y0 - top + strip.shape[0]] = strip
        return image

    def render_strips(
        self, width: int, height: int, box: tuple[int, int, int, int] | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """The rendering of :meth:`render` as consecutive strips of whole rows, top to bottom: ``(first row,
        (rows, columns, channels) uint8)``. A caller that writes each strip out (a streamed PNG) holds one
        strip, never the image.

        A strip holds about ``DECODE_TILE_PIXELS`` pixels; a row wider than that is rendered in column tiles
        of at most ``DECODE_TILE_PIXELS`` (a 1-pixel-high image a million pixels wide included).
        """
        left, top, right, bottom = _check_box(box, width, height)
        cols_out, channels = right - left, self.header.config.channels
        tile_rows = max(1, C.DECODE_TILE_PIXELS // cols_out)
        tile_cols = min(cols_out, C.DECODE_TILE_PIXELS)
        column_tiles = [np.arange(left + x0, left + min(cols_out, x0 + tile_cols))
                        for x0 in range(0, cols_out, tile_cols)]
        # a tile's columns are the same in every strip: their taps are computed once (unless there are many
        # column tiles, whose taps together would grow with the image width)
        cached = [self.axis_taps(width, column_tiles[0], 0)] if len(column_tiles) == 1 else None

        def strip_at(y0: int) -> np.ndarray:
            rows = np.arange(y0, min(bottom, y0 + tile_rows))
            strip = np.empty((rows.size, cols_out, channels), dtype=np.uint8)
            for index, columns in enumerate(column_tiles):
                taps = cached[0] if cached else self.axis_taps(width, columns, 0)
                with np.errstate(over="ignore", invalid="ignore"):  # overflowing weights: defined by to_uint8
                    values = self.mlp(self.tile_features(width, height, columns, rows, taps))  # (channels, pixels)
                x0 = index * tile_cols
                strip[:, x0 : x0 + columns.size] = to_uint8(values.T).reshape(rows.size, columns.size, channels)
            return strip

        starts = range(top, bottom, tile_rows)
        threads = min(render_threads(self.threads), len(starts))
        # BLAS keeps to one thread: the MLP's products are small (16 x 48 by a chunk), and its own threads,
        # woken for each, cost more than they save (2x slower here) and would oversubscribe the cores
        # under the render threads below
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, user_api="blas"):
            if threads == 1:
                for y0 in starts:
                    yield y0, strip_at(y0)
                return
            yield from _in_threads(strip_at, starts, threads)


def _in_threads(render, starts: range, threads: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(y0, render(y0))`` for each start, in order, ``threads`` strips rendering side by side: numpy releases
    the GIL in its loops and every pixel is computed on its own (SPEC §7), so the bytes are one thread's.
    Plain threads (concurrent.futures would import logging: ~5 ms of every decode's start-up)."""
    import threading

    results: dict[int, np.ndarray | BaseException] = {}
    ready = threading.Condition()
    order = list(starts)
    claimed = iter(range(len(order)))
    window = threading.Semaphore(2 * threads)  # strips rendered ahead of the consumer, at most
    stop = False

    def work() -> None:
        while True:
            window.acquire()
            with ready:
                index = next(claimed, None)
            if index is None or stop:
                return
            try:
                value: np.ndarray | BaseException = render(order[index])
            except BaseException as error:  # handed to the consumer, raised there
                value = error
            with ready:
                results[index] = value
                ready.notify_all()

    workers = [threading.Thread(target=work, daemon=True) for _ in range(threads)]
    for worker in workers:
        worker.start()
    try:
        for index, y0 in enumerate(order):
            with ready:
                ready.wait_for(lambda: index in results)
                value = results.pop(index)
            window.release()
            if isinstance(value, BaseException):
                raise value
            yield y0, value
    finally:
        stop = True
        for _ in workers:
            window.release()
        for worker in workers:
            worker.join()


def mlp_of(tensors: dict[str, tuple[np.ndarray, np.float32]], depth: int) -> FixedPointMLP:
    """The MLP of a file's weight tensors (:meth:`QuantizedWeights.tensors`: integer codes and steps) with
    ``depth`` hidden layers (SPEC §7 step 5)."""
    return FixedPointMLP([FixedPointLayer.from_codes(*tensors[f"mlp.{k}.weight"], *tensors[f"mlp.{k}.bias"])
                          for k in range(depth + 1)])


def render_threads(requested: int | None) -> int:
    """Threads that render strips: ``requested``, else one per core this process may run on (at most 4)."""
    if requested is not None:
        return max(1, int(requested))
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(4, cores))


def feature_table(dec_w: np.ndarray, dec_b: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """The latent decoder on stored rows: ``(F, rows)`` float32 (SPEC §7 step 2: ``((lat_0 W_0 + lat_1 W_1)
    + ...) + b``, each operation one float32 operation, no BLAS), then :func:`bounded_features`."""
    values = lat.T.astype(np.float32, copy=False)  # (D, rows); integer latents are exact in float32
    table = dec_w[:, :1] * values[:1]
    if lat.shape[1] > 1:
        scratch = np.empty_like(table)
        for d in range(1, lat.shape[1]):
            np.multiply(dec_w[:, d : d + 1], values[d : d + 1], out=scratch)
            table += scratch
    table += dec_b[:, None]
    return bounded_features(table)


def bounded_features(table: np.ndarray) -> np.ndarray:
    """Feature values clamped to ``±FEATURE_LIMIT`` and NaN taken as 0, in place (SPEC §7 step 2): then no
    blend of them overflows float32 and no pixel's features are NaN. Only a file whose weights overflow
    float32 has values it changes."""
    np.nan_to_num(table, copy=False, nan=0.0, posinf=C.FEATURE_LIMIT, neginf=-C.FEATURE_LIMIT)
    return np.clip(table, -C.FEATURE_LIMIT, C.FEATURE_LIMIT, out=table)


def _check_box(box: tuple[int, int, int, int] | None, width: int, height: int) -> tuple[int, int, int, int]:
    """``box`` (left, top, right, bottom), or the whole ``width x height``; ValueError outside of it."""
    if box is None:
        return 0, 0, width, height
    left, top, right, bottom = (int(v) for v in box)
    if not (0 <= left < right <= width and 0 <= top < bottom <= height):
        msg = f"region {box} is not inside the {width}x{height} image"
        raise ValueError(msg)
    return left, top, right, bottom


def to_uint8(rgb: np.ndarray) -> np.ndarray:
    """Normative float -> 8-bit conversion: NaN -> 0, clip to [0, 1], scale by 255, round half to even.

    NaN can only come from a file whose weights overflow float32; mapping it explicitly keeps the output
    defined (a NaN cast to uint8 is platform-dependent).
    """
    return np.rint(np.clip(np.nan_to_num(rgb, nan=0.0), 0.0, 1.0) * 255.0).astype(np.uint8)
