"""The training blend: every level's separable interpolation of a pixel batch as two sparse matrix products.

:class:`shc.codec.model.GridCoords` blends level by level and tap by tap (~25 tensor ops a level, each with
its autograd node): clear, and the reference, but a training step then costs its op count, not its
arithmetic (results/throughput). Here all levels go at once. The vertices a batch needs are gathered into
one padded matrix ``G`` (``P x Ymax``: the vertex columns of every level stacked, each level's vertex rows
along the second axis), then

1. *along x*: ``A = Wx @ G``, with ``Wx`` the block-diagonal ``(L * w) x P`` matrix of every level's
   column taps (``taps`` non-zeros a row);
2. *along y*: ``out = Wy @ A'``, with ``A'`` the same values arranged level by level as ``(L * Ymax) x w``
   and ``Wy`` the ``(L * h) x (L * Ymax)`` matrix of the row taps.

Both are CSR products (one kernel each, ``taps`` multiply-adds per output value); the backward is the same
products with the transposed matrices and one scatter-add into the table. Padding entries of ``G`` are never
read by ``Wy``, so their gradient is zero. Features equal the reference's to float32 rounding (the sums
may be fused or reordered by the sparse kernel): tests/test_blend.py.

Which vertices ``G`` holds: every vertex of every level when the image is small enough (all of them are
near some batch pixel anyway; :class:`BlendPlan` precomputes everything), or only the vertex columns and
rows that the batch's taps reach, per batch (:meth:`BlendPlan.batch`, large images: the step then costs
what the batch costs). Table rows of a vertex: ``axis_taps`` and ``LevelLayout.vertex_rows``, the
normative geometry.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import torch

from shc.format.grid import axis_taps

__all__ = ["BatchBlend", "BlendPlan", "Jitter", "gather_rows"]

ALL_VERTICES_LIMIT = 1 << 22
"""Images whose padded vertex matrix ``G`` has at most this many entries keep all vertices in it."""


def vertex_matrix_fits(level_cells: list[tuple[int, int]]) -> bool:
    """Whether the padded vertex matrix of all levels (cells ``(nx, ny)`` each) stays within
    :data:`ALL_VERTICES_LIMIT` entries: then training blends, rates and updates every latent each step."""
    columns = sum(nx + 1 for nx, _ in level_cells)
    return columns * max(ny + 1 for _, ny in level_cells) <= ALL_VERTICES_LIMIT


class BlendPlan:
    """What is fixed for one image and grid: every level's taps at every pixel column and row, and (small
    images) the padded vertex matrix of all levels."""

    def __init__(self, layout, width: int, height: int, kernel: int, device: torch.device) -> None:
        self.width, self.height, self.device, self.kernel = width, height, device, kernel
        self.levels = layout.levels
        self.vx, self.wx = _level_taps(width, [lv.nx for lv in self.levels], np.arange(width), kernel)  # (W, L, T)
        self.vy, self.wy = _level_taps(height, [lv.ny for lv in self.levels], np.arange(height), kernel)  # (H, L, T)
        self.taps = self.vx.shape[2]
        self.all_vertices = vertex_matrix_fits([(lv.nx, lv.ny) for lv in self.levels])
        self._full: BatchBlend | None = None
        if self.all_vertices:
            xs = [np.arange(lv.nx + 1) for lv in self.levels]
            ys = [np.arange(lv.ny + 1) for lv in self.levels]
            self._vertices = _VertexSet(self.levels, xs, ys)
            self._vertices_t = torch.from_numpy(self._vertices.table_rows).to(device)

    def full(self) -> BatchBlend:
        """The blend of the whole image (made once: full-image training reuses it every step)."""
        if self._full is None:
            self._full = self.batch(np.arange(self.width), np.arange(self.height))
        return self._full

    def batch(self, columns: np.ndarray, rows: np.ndarray, jitter: Jitter | None = None) -> BatchBlend:
        """The blend of the product set ``rows x columns`` (sorted int arrays) of this image's pixels, at their
        centres or, with ``jitter``, at a sub-pixel position per column and per row."""
        if jitter is None:
            vx, wx = self.vx[columns], self.wx[columns]  # (w, L, T)
            vy, wy = self.vy[rows], self.wy[rows]  # (h, L, T)
        else:
            vx, wx = _subpixel_taps(self.width, [lv.nx for lv in self.levels], columns, jitter.subpixels,
                                    jitter.columns, self.kernel)
            vy, wy = _subpixel_taps(self.height, [lv.ny for lv in self.levels], rows, jitter.subpixels,
                                    jitter.rows, self.kernel)
        if self.all_vertices:
            vertices, vertex_rows = self._vertices, self._vertices_t
            px, py = vx, vy
        else:  # only the vertex columns and rows this batch reaches
            xs, px = _unique_per_level(vx)
            ys, py = _unique_per_level(vy)
            vertices = _VertexSet(self.levels, xs, ys)
            vertex_rows = torch.from_numpy(vertices.table_rows).to(self.device)
        levels, taps, w, h = len(self.levels), self.taps, columns.size, rows.size
        ymax = vertices.ymax
        x_cols = (px + vertices.x_offsets[None, :, None]).transpose(1, 0, 2)  # (L, w, T)
        y_cols = (py + (np.arange(levels) * ymax + vertices.y_offsets)[None, :, None]).transpose(1, 0, 2)  # (L, h, T)
        wx_m = _csr(x_cols, wx.transpose(1, 0, 2), (levels * w, vertices.num_columns), self.device)
        wy_m = _csr(y_cols, wy.transpose(1, 0, 2), (levels * h, levels * ymax), self.device)
        return BatchBlend(vertex_rows, vertices.num_columns, ymax, wx_m, wy_m, levels, taps, w, h,
                          torch.from_numpy(vertices.rate_weights).to(self.device))


@dataclass(frozen=True)
class Jitter:
    """Sub-pixel sample positions of a batch: pixel ``i`` of an axis is sampled at ``(j + 1/2) / subpixels``
    of its width (``j`` per column and per row, ``0 .. subpixels - 1``), so the field learns each pixel over
    its area and renders between pixel centres (``--scale 2``) as the image would look there. With an odd
    ``subpixels`` the middle position is the pixel centre, where the decoder samples at native size."""

    subpixels: int
    columns: np.ndarray
    rows: np.ndarray

    @classmethod
    def draw(cls, subpixels: int, num_columns: int, num_rows: int, rng: np.random.Generator) -> Jitter:
        """A random position per column and per row."""
        return cls(subpixels, rng.integers(0, subpixels, num_columns), rng.integers(0, subpixels, num_rows))

    @classmethod
    def box(cls, subpixels: int, num_columns: int, num_rows: int) -> Jitter:
        """Every position of every column and row, for columns and rows each repeated ``subpixels`` times."""
        return cls(subpixels, np.tile(np.arange(subpixels), num_columns), np.tile(np.arange(subpixels), num_rows))


def _level_taps(size: int, cells: list[int], pixels: np.ndarray, kernel: int) -> tuple[np.ndarray, np.ndarray]:
    """Every level's taps at ``pixels`` of an axis of ``size`` pixels (level ``l`` has ``cells[l]`` cells):
    vertices int64 and weights float32, both ``(n, L, T)``."""
    taps = [axis_taps(size, n, pixels, kernel) for n in cells]
    return (np.stack([t[0] for t in taps], 1).transpose(2, 1, 0).copy(),
            np.stack([t[1] for t in taps], 1).transpose(2, 1, 0).copy())


def _subpixel_taps(size: int, cells: list[int], pixels: np.ndarray, subpixels: int, offsets: np.ndarray, kernel: int):
    """Taps ``(n, L, T)`` of sub-pixel ``offsets`` of ``pixels``: the exact positions of the axis subdivided
    ``subpixels`` times (SPEC §7's integer geometry, so the middle offset gives the centre taps exactly)."""
    fine = subpixels * np.asarray(pixels, dtype=np.int64) + offsets
    return _level_taps(size * subpixels, cells, fine, kernel)


class _VertexSet:
    """The vertices held in ``G``: per level, sorted vertex columns ``xs[l]`` and rows ``ys[l]``; their table
    rows ``(P, Ymax)`` (padding: row 0, never read) and, per entry, the weight that makes the rate of these
    entries an unbiased estimate of the whole table's (0 for padding; rows of the level / entries held).

    Levels are packed on shelves: a level takes ``len(xs[l])`` rows of ``G`` from ``x_offsets[l]`` and
    ``len(ys[l])`` columns from ``y_offsets[l]``; a shelf holds levels side by side while their rows fit in
    ``Ymax`` (the tallest level's), so the small levels fill the padding the large ones leave (Kodak q3:
    a third fewer entries than a shelf per level)."""

    def __init__(self, levels, xs: list[np.ndarray], ys: list[np.ndarray]) -> None:
        self.ymax = max(y.size for y in ys)
        order = sorted(range(len(levels)), key=lambda index: (-ys[index].size, -xs[index].size, index))
        shelves: list[list[int]] = []  # [first row, rows, columns used]
        self.x_offsets = np.zeros(len(levels), dtype=np.int64)
        self.y_offsets = np.zeros(len(levels), dtype=np.int64)
        for index in order:
            width, height = xs[index].size, ys[index].size
            shelf = next((s for s in shelves if s[2] + height <= self.ymax and width <= s[1]), None)
            if shelf is None:
                shelf = [sum(s[1] for s in shelves), width, 0]
                shelves.append(shelf)
            self.x_offsets[index], self.y_offsets[index] = shelf[0], shelf[2]
            shelf[2] += height
        self.num_columns = sum(s[1] for s in shelves)
        table_rows = np.zeros((self.num_columns, self.ymax), dtype=np.int64)
        weights = np.zeros((self.num_columns, self.ymax), dtype=np.float32)
        for level, x, y, x0, y0 in zip(levels, xs, ys, self.x_offsets, self.y_offsets):
            block = level.vertex_rows(x[:, None], y[None, :]) + level.offset
            table_rows[x0 : x0 + x.size, y0 : y0 + y.size] = block
            weights[x0 : x0 + x.size, y0 : y0 + y.size] = level.rows / block.size
        self.table_rows, self.rate_weights = table_rows.reshape(-1), weights.reshape(-1)


def _unique_per_level(v: np.ndarray) -> tuple[list[np.ndarray], np.ndarray]:
    """Per level, the sorted distinct vertices of taps ``v (n, L, T)``, and each tap's position among them."""
    values, positions = [], np.empty_like(v)
    for level in range(v.shape[1]):
        distinct, inverse = np.unique(v[:, level], return_inverse=True)
        values.append(distinct)
        positions[:, level] = inverse.reshape(v.shape[0], v.shape[2])
    return values, positions


@dataclass
class _Csr:
    """A sparse matrix with ``taps`` entries per row, as CSR, and (made on first use) its transpose."""

    matrix: torch.Tensor
    cols: torch.Tensor
    values: torch.Tensor
    shape: tuple[int, int]
    _transposed: torch.Tensor | None = None

    def transposed(self) -> torch.Tensor:
        if self._transposed is None:
            taps = self.values.numel() // self.shape[0]
            order = torch.argsort(self.cols, stable=True)
            counts = torch.bincount(self.cols, minlength=self.shape[1])
            crow = torch.zeros(self.shape[1] + 1, dtype=torch.int32, device=self.cols.device)
            crow[1:] = torch.cumsum(counts, 0)
            rows = (order // taps).to(torch.int32)
            self._transposed = _sparse(crow, rows, self.values[order], (self.shape[1], self.shape[0]))
        return self._transposed


def _sparse(crow, cols, values, shape) -> torch.Tensor:
    with warnings.catch_warnings():  # "sparse CSR support is in beta": the products used here are long-standing
        warnings.simplefilter("ignore")
        return torch.sparse_csr_tensor(crow, cols, values, shape, check_invariants=False)


def _csr(cols: np.ndarray, values: np.ndarray, shape: tuple[int, int], device) -> _Csr:
    """The matrix whose row ``i`` has ``values[i, t]`` at column ``cols[i, t]`` (``(..., T)`` arrays, rows in
    C order; a column repeated within a row adds up, as clamped B-spline taps at the border must)."""
    taps = cols.shape[-1]
    cols_t = torch.from_numpy(np.ascontiguousarray(cols, dtype=np.int32).reshape(-1)).to(device)
    values_t = torch.from_numpy(np.ascontiguousarray(values).reshape(-1)).to(device)
    crow = torch.arange(0, cols_t.numel() + 1, taps, device=device, dtype=torch.int32)
    return _Csr(_sparse(crow, cols_t, values_t, shape), cols_t, values_t, shape)


class BatchBlend:
    """The blend of one batch (``h`` rows x ``w`` columns of pixels) on all ``L`` levels."""

    def __init__(self, vertex_rows, num_columns, ymax, wx, wy, levels, taps, w, h, rate_weights) -> None:
        self.vertex_rows = vertex_rows
        """Table row of every entry of ``G`` (flattened ``P x Ymax``; padding points at row 0)."""
        self.num_columns, self.ymax = num_columns, ymax
        self.wx, self.wy = wx, wy
        self.num_levels, self.taps, self.w, self.h = levels, taps, w, h
        self.rate_weights = rate_weights
        """Per entry of ``G``: 0 for padding, else the level's rows / its entries held (the rate of the
        held entries, so weighted, estimates the whole table's without bias)."""

    @property
    def num_pixels(self) -> int:
        return self.w * self.h

    def __call__(self, vertices: torch.Tensor) -> torch.Tensor:
        """Blended features ``(h * w, L * F)`` of the values ``(P * Ymax, F)`` of ``G``'s entries (a feature
        table gathered with :func:`gather_rows` at ``vertex_rows``), as ``GridCoords.sample``."""
        if vertices.shape[1] == 1:
            return _SeparableBlend.apply(vertices.reshape(-1), self)
        per_feature = [_SeparableBlend.apply(vertices[:, f], self) for f in range(vertices.shape[1])]
        return torch.stack(per_feature, 2).reshape(self.num_pixels, -1)


class _SeparableBlend(torch.autograd.Function):
    """``Wy @ arrange(Wx @ G)`` for one feature: ``(P * Ymax,)`` -> ``(h * w, L)`` (a transposed view)."""

    @staticmethod
    def forward(ctx, vertices: torch.Tensor, plan: BatchBlend) -> torch.Tensor:  # type: ignore[override]
        levels, w, h, ymax = plan.num_levels, plan.w, plan.h, plan.ymax
        along = _spmm(plan.wx.matrix, vertices.view(plan.num_columns, ymax))  # (L * w, Ymax)
        out = _spmm(plan.wy.matrix, _swap_last(along.view(levels, w, ymax)).view(levels * ymax, w))  # (L * h, w)
        ctx.plan = plan
        return out.view(levels, h * w).t()

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        plan = ctx.plan
        levels, w, h, ymax = plan.num_levels, plan.w, plan.h, plan.ymax
        grad_out = grad.t()  # (L, n): contiguous when it comes from the channels-first MLP
        grad_out = (grad_out if grad_out.is_contiguous() else grad_out.contiguous()).view(levels * h, w)
        grad_along = _spmm(plan.wy.transposed(), grad_out)  # (L * Ymax, w)
        grad_along = _swap_last(grad_along.view(levels, ymax, w)).view(levels * w, ymax)
        return _spmm(plan.wx.transposed(), grad_along).view(-1), None


_SCRATCH: dict[tuple[int, ...], np.ndarray] = {}


def _swap_last(x: torch.Tensor) -> torch.Tensor:
    """``x.transpose(-2, -1)`` made contiguous (3-D); numpy's copy is ~4x faster than torch's on CPU.

    The result is only read by the next sparse product and never kept, so on CPU it lives in a scratch
    buffer per shape (a fresh one would cost page faults every step)."""
    if x.device.type != "cpu" or x.requires_grad:
        return x.transpose(-2, -1).contiguous()
    shape = (x.shape[0], x.shape[2], x.shape[1])
    buffer = _SCRATCH.get(shape)
    if buffer is None:
        if len(_SCRATCH) > 8:
            _SCRATCH.clear()
        buffer = _SCRATCH[shape] = np.empty(shape, dtype=np.float32)
    np.copyto(buffer, x.numpy().transpose(0, 2, 1))
    return torch.from_numpy(buffer)


def _spmm(sparse: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``sparse @ dense`` into a fresh row-major result (``sparse @ dense`` itself zero-fills and copies
    its result through a temporary on CPU: twice the time)."""
    out = dense.new_empty(sparse.shape[0], dense.shape[1])
    return torch.addmm(out, sparse, dense.contiguous(), beta=0, out=out)


class _GatherRows(torch.autograd.Function):
    """``table[index]`` of a 1-D table whose backward is one ``scatter_add`` (faster than ``index_add`` on CPU)."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        ctx.save_for_backward(index)
        ctx.rows = table.shape[0]
        return table.index_select(0, index)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (index,) = ctx.saved_tensors
        return grad.new_zeros(ctx.rows).scatter_add_(0, index, grad.contiguous()), None


def gather_rows(table: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """Rows ``index`` of a ``(rows, F)`` table, ``(len(index), F)``."""
    if table.shape[1] == 1:
        return _GatherRows.apply(table.reshape(-1), index).unsqueeze(1)
    return table.index_select(0, index)
