"""The implicit neural representation trained by the encoder (PyTorch; mirrors shc.format.decoder).

    latents (rows, D) --quantize--> ints --latent decoder (D->F, linear)--> feature table (rows, F)
    pixel -> 4 corner rows on each of L levels -> bilinear blend -> (L*F) -> MLP (ReLU) -> RGB (or RGBA)

Pixel positions and blend weights come from :func:`shc.format.grid.axis_taps` and the storage of every level from
:class:`shc.format.layout.LatentLayout` (the normative numpy geometry), so training indexes the latents
exactly as the decoder will. Training renders product sets of pixel columns and rows, so the bilinear
blend is separable (:class:`GridCoords`).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shc.format.constants import WEIGHT_CODE_MAX, WEIGHT_INT_MAX
from shc.format.grid import axis_taps
from shc.format.header import Header
from shc.format.weights import QuantizedWeights, weight_shapes

from shc.codec.blend import BatchBlend, BlendPlan, gather_rows
from shc.codec.context import ContextModel  # noqa: TC001 (the attribute's type)

__all__ = ["GridCoords", "GridINR", "PixelGrid"]


class GridCoords:
    """The pixels ``rows x columns`` (a product set, row-major) of one rendering, blended separably.

    A product of pixel columns and pixel rows (the full image, a strip, or a random subset of each) lets
    every level be interpolated along x on its vertex rows, then along y: ``(ny + 1) * w + h * w``
    multiply-adds of dense tensors per level instead of 4 scattered gathers per pixel, with a backward of
    a few index-adds (faster than a sparse blend matrix or ``embedding_bag`` on CPU: results/experiments.md).
    The same float32 arithmetic as the decoder's separable blend (SPEC §7), so given the same feature table
    the two compute bit-identical features at any output size.
    """

    def __init__(self, grid: PixelGrid, columns: np.ndarray, rows: np.ndarray) -> None:
        self.grid = grid
        self.columns, self.rows = columns, rows
        self.num_pixels = columns.size * rows.size
        device = grid.device
        kernel = grid.header.config.interpolation
        self.axes = []  # per level: (x vertices, x weights (1, w, 1) each, y vertices, y weights (h, 1, 1) each)
        for level in grid.layout.levels:
            vx, wx = axis_taps(grid.width, level.nx, columns, kernel)
            vy, wy = axis_taps(grid.height, level.ny, rows, kernel)
            self.axes.append((
                [_to(v, device) for v in vx], [_to(w, device)[None, :, None] for w in wx],
                [_to(v, device) for v in vy], [_to(w, device)[:, None, None] for w in wy],
            ))

    def sample(self, table: torch.Tensor) -> torch.Tensor:
        """Blended features ``(num_pixels, L * F)`` of a feature table ``(rows, F)``: per level, taps along
        x summed in order on the vertex grid's rows, then taps along y (the decoder's order)."""
        feat = table.shape[1]
        out = []
        for vertex_grid, (vx, wx, vy, wy) in zip(self.grid.vertex_grids(table), self.axes):
            along_x = vertex_grid.index_select(1, vx[0]) * wx[0]  # (ny+1, w, F)
            for v, w in zip(vx[1:], wx[1:]):
                along_x = along_x + vertex_grid.index_select(1, v) * w
            result = along_x.index_select(0, vy[0]) * wy[0]  # (h, w, F)
            for v, w in zip(vy[1:], wy[1:]):
                result = result + along_x.index_select(0, v) * w
            out.append(result)
        return torch.stack(out, 2).view(self.num_pixels, len(self.axes) * feat)


def _to(array: np.ndarray, device: torch.device) -> torch.Tensor:
    return torch.from_numpy(array).to(device)


class PixelGrid:
    """The pixel grid of a ``width x height`` rendering and the latent rows of every level's vertices.

    Hands out :class:`GridCoords` for the whole image, row strips (scoring, bounded memory) and random
    training batches (a random subset of columns times a random subset of rows: pixels from everywhere,
    still separable).
    """

    def __init__(self, header: Header, width: int, height: int, device: torch.device | str = "cpu") -> None:
        self.header, self.width, self.height = header, width, height
        self.layout = header.layout
        self.num_pixels = width * height
        self.device = torch.device(device)
        # a hashed level is first gathered into its virtual (ny + 1) x (nx + 1) vertex grid
        self.gathers = [
            None if level.dense else torch.from_numpy(level.vertex_grid_rows().reshape(-1) + level.offset).to(self.device)
            for level in self.layout.levels
        ]

    def blend_plan(self) -> BlendPlan:
        """The training blend of this image (:mod:`shc.codec.blend`), made on first use."""
        if getattr(self, "_plan", None) is None:
            self._plan = BlendPlan(self.layout, self.width, self.height, self.header.config.interpolation, self.device)
        return self._plan

    def vertex_grids(self, table: torch.Tensor) -> list[torch.Tensor]:
        """Each level's feature rows arranged as its ``(ny + 1, nx + 1, F)`` vertex grid."""
        feat = table.shape[1]
        grids = []
        for level, gather in zip(self.layout.levels, self.gathers):
            values = table[level.rows_slice] if gather is None else table.index_select(0, gather)
            grids.append(values.view(level.ny + 1, level.nx + 1, feat))
        return grids

    def coords(
        self, columns: np.ndarray | None = None, rows: np.ndarray | None = None
    ) -> tuple[torch.Tensor, GridCoords]:
        """``(pixel_indices, coords)`` of the product ``rows x columns`` (default: all), indices row-major."""
        columns = np.arange(self.width) if columns is None else np.asarray(columns, dtype=np.int64)
        rows = np.arange(self.height) if rows is None else np.asarray(rows, dtype=np.int64)
        pixels = torch.from_numpy((rows[:, None] * self.width + columns[None, :]).reshape(-1)).to(self.device)
        return pixels, GridCoords(self, columns, rows)

    def strips(
        self, max_pixels: int = 1 << 20, sample: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Iterator[tuple[torch.Tensor, GridCoords]]:
        """The whole image (or the ``sample`` columns x rows of it) as strips of whole rows, each of at most
        ``max_pixels`` pixels (at least one row), made one at a time: no index tensor of the whole image."""
        for columns, rows in self.strip_columns_rows(max_pixels, sample):
            yield self.coords(columns, rows)

    def strip_columns_rows(
        self, max_pixels: int = 1 << 20, sample: tuple[np.ndarray, np.ndarray] | None = None
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """The columns and rows of :meth:`strips`, without their coordinates."""
        columns, rows = sample if sample is not None else (np.arange(self.width), np.arange(self.height))
        step = max(1, max_pixels // columns.size)
        for top in range(0, rows.size, step):
            yield columns, rows[top : top + step]

    @property
    def batch_run(self) -> int:
        """Columns and rows of batches come in runs of this many (:meth:`random_columns_rows`): 1, or
        :data:`LARGE_IMAGE_RUN` for an image whose blend gathers per batch (:class:`BlendPlan`)."""
        return 1 if self.blend_plan().all_vertices else LARGE_IMAGE_RUN

    def scoring_sample(self, max_pixels: int) -> tuple[np.ndarray, np.ndarray] | None:
        """Columns and rows, evenly spread (in runs of :attr:`batch_run`), of a fixed subset of about
        ``max_pixels`` pixels to score larger images on (None: the image is small enough to score whole).
        Scores then estimate the MSE; bits are always those of the real file."""
        if self.num_pixels <= max_pixels:
            return None
        fraction = math.sqrt(max_pixels / self.num_pixels)
        return _spread(self.width, fraction, self.batch_run), _spread(self.height, fraction, self.batch_run)

    def random_batch(self, batch_pixels: int, rng: np.random.Generator) -> tuple[torch.Tensor, GridCoords]:
        """About ``batch_pixels`` pixels: the same random fraction ``sqrt(batch / total)`` of columns and rows.

        A batch as large as the image is the image itself.
        """
        if batch_pixels >= self.num_pixels:
            return self.coords()
        return self.coords(*self.random_columns_rows(batch_pixels, rng))

    def random_columns_rows(
        self, batch_pixels: int, rng: np.random.Generator, run: int = 1
    ) -> tuple[np.ndarray, np.ndarray]:
        """The sorted columns and rows of :meth:`random_batch` (all of them for a batch as large as the image).

        ``run > 1`` draws runs of ``run`` adjacent columns (rows) at random ``run``-aligned places instead of
        single ones: the pixels of a run share most of their vertices, so a batch of a large image reaches
        ~1/8 of the vertices that as many scattered pixels would (each step then costs what its batch costs).
        """
        if batch_pixels >= self.num_pixels:
            return np.arange(self.width), np.arange(self.height)
        fraction = math.sqrt(batch_pixels / self.num_pixels)
        return _draw(self.width, fraction, run, rng), _draw(self.height, fraction, run, rng)

    def pixel_indices(self, columns: np.ndarray, rows: np.ndarray) -> torch.Tensor:
        """Row-major indices of the pixels ``rows x columns`` in the image."""
        return torch.from_numpy((rows[:, None] * self.width + columns[None, :]).reshape(-1)).to(self.device)


LARGE_IMAGE_RUN = 8
"""Batches and scoring samples of large images are runs of this many adjacent columns times runs of as
many rows (:meth:`PixelGrid.random_columns_rows`)."""


def _spread(size: int, fraction: float, run: int) -> np.ndarray:
    """About ``fraction * size`` sorted distinct indices evenly spread over ``0 .. size - 1``, in runs of ``run``."""
    count = max(1, min(size, round(size * fraction)))
    if run <= 1 or size < 2 * run:
        return np.unique(np.linspace(0, size - 1, count).round().astype(np.int64))
    starts = np.unique(np.linspace(0, size - run, max(1, round(count / run))).round().astype(np.int64))
    return np.unique((starts[:, None] + np.arange(run)[None, :]).reshape(-1))


def _draw(size: int, fraction: float, run: int, rng: np.random.Generator) -> np.ndarray:
    """About ``fraction * size`` sorted distinct indices in ``0 .. size - 1``, in aligned runs of ``run``."""
    count = max(1, min(size, round(size * fraction)))
    if run <= 1 or size < 2 * run:
        return np.sort(rng.choice(size, count, replace=False))
    blocks = size // run
    starts = np.sort(rng.choice(blocks, min(blocks, max(1, round(count / run))), replace=False)) * run
    return (starts[:, None] + np.arange(run)[None, :]).reshape(-1)


class GridINR(nn.Module):
    """Latent grid + shared latent decoder + MLP, with the appendix's initialization."""

    def __init__(self, header: Header) -> None:
        super().__init__()
        cfg = header.config
        self.header = header
        self.layout = header.layout
        self.latents = nn.Parameter(torch.empty(self.layout.total_rows, cfg.latent_dim).uniform_(-0.01, 0.01))
        # probability-model channel of every latent value (its table index), for the rate term
        channels = torch.from_numpy(self.layout.row_channels())
        self.register_buffer("latent_channels", channels, persistent=False)
        self.context: ContextModel | None = None
        """The context model that codes the dense levels (SPEC §5a), when the header has one: fitted to the
        trained latents and adopted only if it makes the file smaller (:func:`shc.codec.tables.adopt_context`)."""
        self.latent_decoder = nn.Linear(cfg.latent_dim, cfg.feat_dim)
        nn.init.normal_(self.latent_decoder.weight, 0.0, 0.1)
        nn.init.zeros_(self.latent_decoder.bias)
        dims = [cfg.num_levels * cfg.feat_dim] + [cfg.mlp_width] * cfg.mlp_depth + [cfg.channels]  # RGB(A)
        self.mlp = nn.ModuleList(nn.Linear(dims[k], dims[k + 1]) for k in range(len(dims) - 1))
        for layer in self.mlp:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def network_parameters(self) -> list[nn.Parameter]:
        """Parameters stored in the WGHT section, in file order."""
        params = [self.latent_decoder.weight, self.latent_decoder.bias]
        for layer in self.mlp:
            params += [layer.weight, layer.bias]
        names = [name for name, _ in weight_shapes(self.header)]
        assert len(params) == len(names)
        return params

    def forward(
        self,
        q_latents: torch.Tensor,
        coords: GridCoords,
        quantize_weights: bool = False,
        weight_steps: np.ndarray | None = None,
    ) -> torch.Tensor:
        """RGB or RGBA ``(n, channels)`` in [0, 1] units (unclipped) for the pixels of ``coords``.

        ``quantize_weights`` evaluates with the quantized weights the file stores (straight-through
        gradient, so training can adapt to them): int8 steps, or ``weight_steps`` (one per tensor).
        """
        params = self.parameters_as_used(quantize_weights, weight_steps)
        feature_table = F.linear(q_latents, params[0], params[1])  # (rows, F)
        return self.synthesize(coords.sample(feature_table).t(), params).t()

    def render(
        self, q_values: torch.Tensor, batch: BatchBlend, gathered: bool, quantize_weights: bool = False,
        weight_steps: np.ndarray | None = None, levels_kept: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """What :meth:`forward` computes, through the training blend (:mod:`shc.codec.blend`): ``q_values``
        are all quantized latents ``(rows, D)``, or (``gathered``) those of the batch's vertex entries
        ``(len(batch.vertex_rows), D)``, already gathered (large images). ``levels_kept``: per pixel, how
        many of the coarsest levels it sees (a level-of-detail prefix: the others' latents count as 0).
        Returns ``(n, channels)``."""
        params = self.parameters_as_used(quantize_weights, weight_steps)
        features = self.blended_features(q_values, batch, gathered, params)
        if levels_kept is not None:
            features = self.truncated(features, levels_kept, params)
        return self.synthesize(features, params).t()

    def truncated(self, features: torch.Tensor, levels_kept: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """Features ``(L * F, n)`` of pixels that see only their first ``levels_kept[k]`` levels: a level's
        latents of 0 give the latent decoder's bias, blended to itself (its weights sum to one)."""
        num_levels = self.header.config.num_levels
        feat_dim = self.header.config.feat_dim
        level_of_row = torch.arange(num_levels, device=features.device).repeat_interleave(feat_dim)
        keep = level_of_row[:, None] < levels_kept[None, :]
        return torch.where(keep, features, params[1].repeat(num_levels)[:, None])

    def blended_features(
        self, q_values: torch.Tensor, batch: BatchBlend, gathered: bool, params: list[torch.Tensor] | None = None
    ) -> torch.Tensor:
        """The MLP's input, channels first ``(L * F, n)``: latent decoder, then the blend of every level."""
        params = self.network_parameters() if params is None else params
        features = F.linear(q_values, params[0], params[1])
        if not gathered:
            features = gather_rows(features, batch.vertex_rows)
        return batch(features).t()  # the blend's output is (L * F, n) in memory: no copy

    def synthesize(self, h: torch.Tensor, params: list[torch.Tensor]) -> torch.Tensor:
        """The MLP on channels-first features ``(L * F, n)``: ``(channels, n)``. GEMMs of a 16-wide MLP are
        ~1.4x faster with the pixels as the long dimension (results/throughput)."""
        num_layers = len(self.mlp)
        for k in range(num_layers):
            h = torch.addmm(params[3 + 2 * k].unsqueeze(1), params[2 + 2 * k], h)
            if k < num_layers - 1:
                h = F.relu(h, inplace=True)
        return h

    def parameters_as_used(self, quantize_weights: bool, weight_steps: np.ndarray | None = None) -> list[torch.Tensor]:
        """The stored tensors as a forward pass uses them: as trained, or quantized (straight-through)."""
        params = self.network_parameters()
        if quantize_weights:
            steps = [None] * len(params) if weight_steps is None else weight_steps
            params = [p + (dequantize(*quantize_tensor(p, step)) - p).detach() for p, step in zip(params, steps)]
        return params

    def quantized_weights(self, weight_steps: np.ndarray | None = None) -> QuantizedWeights:
        """The integer weights and float32 steps written to the WGHT section (default: int8 steps)."""
        params = self.network_parameters()
        steps = [None] * len(params) if weight_steps is None else weight_steps
        scales, values = [], []
        for p, step in zip(params, steps):
            q, scale = quantize_tensor(p.detach().cpu(), step)
            scales.append(float(scale))
            values.append(q.numpy().astype(np.int64).ravel())
        return QuantizedWeights(np.array(scales, dtype=np.float32), np.concatenate(values))

    def int8_steps(self) -> np.ndarray:
        """The training-time quantization step of each stored tensor: ``max|p| / 127`` (float32)."""
        return np.array([float(quantize_tensor(p.detach().cpu())[1]) for p in self.network_parameters()], dtype=np.float32)


def quantize_tensor(p: torch.Tensor, step: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-tensor quantization: values ``round(p / step)`` with the float32 ``step`` given, or
    int8 (``step = max|p| / 127``). A zero step stores zeros."""
    if step is None:
        scale = p.detach().abs().max().float() / WEIGHT_INT_MAX
        limit = WEIGHT_INT_MAX
    else:
        scale = torch.tensor(step, dtype=torch.float32, device=p.device)
        limit = WEIGHT_CODE_MAX
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(p.detach() / safe).clamp(-limit, limit)
    return q, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``q * scale`` in float32: one multiplication, bit-identical to the numpy decoder's."""
    return q.float() * scale
