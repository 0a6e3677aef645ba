"""The implicit neural representation trained by the encoder (PyTorch; mirrors shc.format.decoder).

    latents (rows, D) --quantize--> ints --latent decoder (D->F, linear)--> feature table (rows, F)
    pixel -> 4 corner rows on each of L levels -> bilinear blend -> (L*F) -> MLP (ReLU) -> RGB

Corner rows and weights come from :mod:`shc.format.grid` (the normative numpy geometry), so training
indexes the latents exactly as the decoder will. The 4-corner blend is one fused product over
all levels (a sparse matrix product): no Python loop over levels in the hot path.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from shc.format.constants import WEIGHT_INT_MAX
from shc.format.container import Header, QuantizedWeights, weight_shapes
from shc.format.grid import corner_indices_weights, level_group, pixel_positions

__all__ = ["GridINR", "PixelCoords", "pixel_batches"]


class PixelCoords:
    """The fixed pixel -> corner-row map of one rendering, as a sparse blend matrix and its transpose.

    Coordinates never change while overfitting, so the 4-corner bilinear blend of every level is one
    precomputed CSR matrix ``S`` of shape ``(n * L, rows)`` with 4 weights per row; the forward pass is
    ``S @ feature_table`` and the backward ``S.T @ grad``. (``embedding_bag``'s CPU backward measured
    ~25x slower on a Kodak-sized grid.)
    """

    def __init__(self, indices: torch.Tensor, weights: torch.Tensor, num_pixels: int, num_rows: int) -> None:
        self.num_pixels = num_pixels
        num_points = indices.shape[0]
        device = indices.device
        cols = indices.reshape(-1)
        values = weights.reshape(-1)
        crow = torch.arange(0, 4 * num_points + 1, 4, device=device, dtype=torch.int64)
        with warnings.catch_warnings():  # "sparse CSR support is in beta": we use only its stable core
            warnings.simplefilter("ignore", UserWarning)
            self.blend = torch.sparse_csr_tensor(crow, cols, values, (num_points, num_rows), check_invariants=False)
        order = torch.argsort(cols, stable=True)
        points = torch.arange(num_points, device=device).repeat_interleave(4)[order]
        t_crow = torch.zeros(num_rows + 1, dtype=torch.int64, device=device)
        t_crow[1:] = torch.cumsum(torch.bincount(cols, minlength=num_rows), 0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            self.blend_t = torch.sparse_csr_tensor(
                t_crow, points, values[order], (num_rows, num_points), check_invariants=False
            )


class _Blend(torch.autograd.Function):
    """``S @ table`` with the precomputed transpose for the gradient."""

    @staticmethod
    def forward(ctx, table: torch.Tensor, coords: PixelCoords) -> torch.Tensor:  # type: ignore[override]
        ctx.coords = coords
        return coords.blend @ table

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        return ctx.coords.blend_t @ grad.contiguous(), None


def _corner_rows(header: Header, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Global corner rows ``(n, L, 4)`` and weights of points given in [0, 1] image units, all levels."""
    cfg = header.config
    indices = np.empty((xs.size, cfg.num_levels, 4), dtype=np.int64)
    weights = np.empty((xs.size, cfg.num_levels, 4), dtype=np.float32)
    offset = 0
    for level, ((nx, ny), rows) in enumerate(zip(header.level_cells, header.level_rows())):
        idx, w = corner_indices_weights(xs * nx, ys * ny, nx, ny, cfg.log2_hashmap_size)
        indices[:, level] = idx + offset
        weights[:, level] = w
        offset += rows
    return indices, weights


def pixel_batches(
    header: Header, width: int, height: int, num_batches: int = 1, seed: int = 0, device: torch.device | str = "cpu"
) -> list[tuple[torch.Tensor, PixelCoords]]:
    """Split the pixels of a ``width x height`` rendering into ``num_batches`` fixed random batches.

    Returns ``(pixel_indices, coords)`` per batch (row-major pixel indices). One batch in pixel order is
    the full image. Training cycles over the batches: each step costs ``1 / num_batches`` of a full step.
    """
    xs = np.tile(pixel_positions(width, 1), height)
    ys = np.repeat(pixel_positions(height, 1), width)
    num_rows = sum(header.level_rows())
    if num_batches <= 1:
        order = np.arange(xs.size)
    else:
        order = np.random.default_rng(seed).permutation(xs.size)
    batches = []
    for part in np.array_split(order, max(1, num_batches)):
        part = np.sort(part)
        indices, weights = _corner_rows(header, xs[part], ys[part])
        coords = PixelCoords(
            torch.from_numpy(indices.reshape(-1, 4)).to(device),
            torch.from_numpy(weights.reshape(-1, 4)).to(device),
            part.size,
            num_rows,
        )
        batches.append((torch.from_numpy(part).to(device), coords))
    return batches


class GridINR(nn.Module):
    """Latent grid + shared latent decoder + MLP, with the appendix's initialization."""

    def __init__(self, header: Header) -> None:
        super().__init__()
        cfg = header.config
        self.header = header
        rows = header.level_rows()
        self.level_offsets = np.concatenate([[0], np.cumsum(rows)]).astype(np.int64)
        self.latents = nn.Parameter(torch.empty(int(self.level_offsets[-1]), cfg.latent_dim).uniform_(-0.01, 0.01))
        self.latent_decoder = nn.Linear(cfg.latent_dim, cfg.feat_dim)
        nn.init.normal_(self.latent_decoder.weight, 0.0, 0.1)
        nn.init.zeros_(self.latent_decoder.bias)
        dims = [cfg.num_levels * cfg.feat_dim] + [cfg.mlp_width] * cfg.mlp_depth + [3]
        self.mlp = nn.ModuleList(nn.Linear(dims[k], dims[k + 1]) for k in range(len(dims) - 1))
        for layer in self.mlp:
            nn.init.xavier_uniform_(layer.weight)
            nn.init.zeros_(layer.bias)

    def group_slices(self) -> list[slice]:
        """Contiguous latent rows of each probability group (levels of a group are contiguous)."""
        cfg = self.header.config
        bounds = []
        for group in range(cfg.num_groups):
            levels = [lv for lv in range(cfg.num_levels) if level_group(lv, cfg.num_levels, cfg.num_groups) == group]
            bounds.append(slice(int(self.level_offsets[levels[0]]), int(self.level_offsets[levels[-1] + 1])))
        return bounds

    def network_parameters(self) -> list[nn.Parameter]:
        """Parameters stored in the WGHT section, in file order."""
        params = [self.latent_decoder.weight, self.latent_decoder.bias]
        for layer in self.mlp:
            params += [layer.weight, layer.bias]
        names = [name for name, _ in weight_shapes(self.header)]
        assert len(params) == len(names)
        return params

    def forward(self, q_latents: torch.Tensor, coords: PixelCoords, quantize_weights: bool = False) -> torch.Tensor:
        """RGB ``(n, 3)`` in [0, 1] units (unclipped) for the pixels of ``coords``.

        ``quantize_weights`` evaluates with the int8 weights the file stores (straight-through gradient, so
        training can adapt to them).
        """
        params = self.network_parameters()
        if quantize_weights:
            params = [p + (dequantize(*quantize_tensor(p)) - p).detach() for p in params]
        cfg = self.header.config
        feature_table = F.linear(q_latents, params[0], params[1])  # (rows, F)
        feats = _Blend.apply(feature_table, coords)  # (n * L, F)
        h = feats.view(coords.num_pixels, cfg.num_levels * cfg.feat_dim)
        num_layers = len(self.mlp)
        for k in range(num_layers):
            h = F.linear(h, params[2 + 2 * k], params[3 + 2 * k])
            if k < num_layers - 1:
                h = F.relu(h)
        return h

    def quantized_weights(self) -> QuantizedWeights:
        """The int8 weights and float32 scales written to the WGHT section."""
        scales, values = [], []
        for p in self.network_parameters():
            q, scale = quantize_tensor(p.detach().cpu())
            scales.append(float(scale))
            values.append(q.numpy().astype(np.int8).ravel())
        return QuantizedWeights(np.array(scales, dtype=np.float32), np.concatenate(values))


def quantize_tensor(p: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric per-tensor int8: ``scale = max|p| / 127`` (float32), values ``round(p / scale)``."""
    scale = p.detach().abs().max().float() / WEIGHT_INT_MAX
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(p.detach() / safe).clamp(-WEIGHT_INT_MAX, WEIGHT_INT_MAX)
    return q, scale


def dequantize(q: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    """``q * scale`` in float32: one multiplication, bit-identical to the numpy decoder's."""
    return q.float() * scale
