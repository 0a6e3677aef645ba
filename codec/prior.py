"""Factorized entropy model: one learned monotone CDF per channel (Ballé et al. 2018, appendix 6.1).

``c(x) = sigmoid(f_K(...f_1(x)))`` where each layer is ``f_k(x) = softplus(H_k) x + b_k`` followed (except
for the last) by ``x + tanh(a_k) * tanh(x)``. Softplus keeps the matrices positive and tanh(a) >= -1 keeps
every gate monotone, so dc/dx >= 0 by construction. The PMF of an integer k is ``c(k + 1/2) - c(k - 1/2)``.

Channels are (probability group, latent dimension) pairs: channel ``group * latent_dim + dim``.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = ["FactorizedPrior"]


def _bin_probability(lower: torch.Tensor, upper: torch.Tensor) -> torch.Tensor:
    """``sigmoid(upper) - sigmoid(lower)`` of pre-sigmoid CDF values, on the sigmoid's flat side for accuracy."""
    sign = -torch.sign(lower + upper).detach()
    return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))


class _Lerp(torch.autograd.Function):
    """Linear interpolation of a 1-D table at ``position`` (grid units), rows offset by ``base``:
    ``table[i] + (table[i + 1] - table[i]) * f`` with ``i = base + cell``, ``cell = floor(position)`` (clamped
    to the table's ``points``), ``f = position - cell``. One autograd node: the table's gradient is two
    ``bincount`` s (an indexed ``index_put`` accumulation is slower on CPU; results/experiments.md), the
    position's the segment slope. Gathers use ``index_select`` (advanced indexing is several times slower).
    """

    @staticmethod
    def forward(ctx, table: torch.Tensor, position: torch.Tensor, base: torch.Tensor, points: int) -> torch.Tensor:  # type: ignore[override]
        cell = position.floor().clamp_(0, points - 2)
        frac = position - cell
        index = base + cell.long()
        slope = (table[1:] - table[:-1]).index_select(0, index)
        ctx.save_for_backward(index, frac, slope)
        ctx.size = table.numel()
        return table.index_select(0, index).addcmul_(slope, frac)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        index, frac, slope = ctx.saved_tensors
        grad_right = grad * frac
        grad_table = torch.bincount(index, grad - grad_right, minlength=ctx.size)
        grad_table[1:] += torch.bincount(index, grad_right, minlength=ctx.size)[:-1]
        return grad_table.to(grad.dtype), grad * slope, None, None


class FactorizedPrior(nn.Module):
    """Per-channel learned CDF with ``filters`` hidden widths, initialized as in Ballé et al. / CompressAI."""

    def __init__(self, channels: int, filters: tuple[int, ...] = (3, 3, 3), init_scale: float = 10.0) -> None:
        super().__init__()
        self.channels = channels
        dims = (1, *filters, 1)
        scale = init_scale ** (1.0 / (len(filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for k in range(len(filters) + 1):
            init = math.log(math.expm1(1.0 / scale / dims[k + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[k + 1], dims[k]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[k + 1], 1) - 0.5))
            if k < len(filters):
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[k + 1], 1)))

    def logits_cdf(self, x: torch.Tensor, channels: slice) -> torch.Tensor:
        """Pre-sigmoid CDF of ``x`` shaped ``(c, n)`` for the channels in ``channels``; returns ``(c, n)``."""
        h = x.unsqueeze(1)  # (c, 1, n)
        for k, matrix in enumerate(self.matrices):
            h = torch.matmul(F.softplus(matrix[channels]), h) + self.biases[k][channels]
            if k < len(self.factors):
                h = h + torch.tanh(self.factors[k][channels]) * torch.tanh(h)
        return h.squeeze(1)

    def likelihood(self, x: torch.Tensor, channels: slice) -> torch.Tensor:
        """P(round-bin of x) = c(x + 1/2) - c(x - 1/2), computed on the sigmoid's flat side for accuracy."""
        return _bin_probability(self.logits_cdf(x - 0.5, channels), self.logits_cdf(x + 0.5, channels))

    def bits(self, x: torch.Tensor, channels: slice) -> torch.Tensor:
        """Total self-information in bits of values ``x`` ``(c, n)`` (appendix eq. 3 summed, not averaged)."""
        return -torch.log2(self.likelihood(x, channels).clamp_min(1e-9)).sum()

    def tabulated_bits(self, values: torch.Tensor, channels: torch.Tensor, spacing: float = 0.125,
                       max_points: int = 4096, weights: torch.Tensor | None = None) -> torch.Tensor:
        """Total self-information in bits of ``values`` (any shape) whose channel ids are ``channels``.

        The training-time rate: instead of running the CDF MLPs on every latent (twice), the self-information
        ``-log2 P`` of each channel is evaluated on a grid of spacing ``spacing`` (a power of two, at most
        1/2, doubled while the grid would exceed ``max_points``) covering the values and interpolated
        linearly. Integers lie on the grid, so hard-rounded latents get their exact bits; the
        gradient reaches the prior through the grid values and the latents through the segment slopes.
        One small batched MLP evaluation per step replaces two per latent (timings:
        results/speed-cpu/README.md). ``weights`` (same shape as ``values``) weigh each value's bits.
        """
        values = values.reshape(-1)
        with torch.no_grad():
            lo = float(torch.floor(values.min())) - 1.0
            hi = float(torch.ceil(values.max())) + 1.0
        if not (math.isfinite(lo) and math.isfinite(hi)):
            msg = "latents are not finite (training diverged)"
            raise FloatingPointError(msg)
        while (hi - lo) / spacing >= max_points and spacing < 0.5:  # a very wide range: coarser grid
            spacing *= 2
        points = int(round((hi - lo) / spacing)) + 1
        half = int(round(0.5 / spacing))  # c(x -+ 1/2) are the same CDF evaluations, `half` grid steps apart
        knots = lo - 0.5 + spacing * torch.arange(points + 2 * half, device=values.device, dtype=values.dtype)
        logits = self.logits_cdf(knots.expand(self.channels, -1), slice(None))
        nll = -torch.log2(_bin_probability(logits[:, :points], logits[:, 2 * half :]).clamp_min(1e-9))
        position = (values - lo) * (1.0 / spacing)  # exact: spacing is a power of two
        bits = _Lerp.apply(nll.reshape(-1), position, channels.reshape(-1) * points, points)
        return bits.sum() if weights is None else bits @ weights.reshape(-1)

    @torch.no_grad()
    def pmf(self, channel: int, min_symbol: int, max_symbol: int) -> np.ndarray:
        """Float64 PMF over the integers ``min_symbol..max_symbol`` of one channel, for building tables."""
        device = self.matrices[0].device
        symbols = torch.arange(min_symbol, max_symbol + 1, device=device, dtype=torch.float32)
        p = self.likelihood(symbols.unsqueeze(0), slice(channel, channel + 1))[0]
        return p.double().cpu().numpy()
