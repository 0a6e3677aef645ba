"""The context model's encoder side: the network of :mod:`shc.format.context` in floats, the rate of the
context levels' latents under it, and its fit to trained latents.

Every context vertex is rated in one parallel pass (its inputs are other latents, anchors included, so the
checkerboard the decoder needs is only a matter of which inputs are zero). The file's integer network is
this one with its weights rounded to 1/4096 (:meth:`ContextModel.integer_params`); the rate always uses
those rounded weights (straight through), so what is optimized is what is coded.

The latents are trained under the factorized prior and the context model fitted to them afterwards
(:meth:`ContextModel.fit`): rated by the context model from the first step, latents and model settled
where files were ~1.5x larger for +0.3 dB (results/context/README.md).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from shc.format import context as ctx
from shc.format.layout import LatentLayout

from shc.codec.quantize import hard_round

__all__ = ["ContextModel"]

_STEP = float(1 << ctx.FRACTION_BITS)


def _fixed_point(weight: torch.Tensor) -> torch.Tensor:
    """Rounded to the file's fixed point (1/4096), gradient straight through."""
    return weight + (torch.round(weight * _STEP) / _STEP - weight).detach()


def laplace_bits(residual: torch.Tensor, log2_scale: torch.Tensor) -> torch.Tensor:
    """Self-information (bits) of integer-binned ``residual`` under a zero-centred Laplace of scale
    ``2^log2_scale``: ``-log2 P(|r| - 1/2 < X < |r| + 1/2)``, the density the file's tables discretize."""
    scale = torch.exp2(log2_scale.clamp(ctx.SCALE_MIN_LOG2, ctx.SCALE_MIN_LOG2 + (ctx.NUM_SCALE_BUCKETS - 1) / 8))
    a = residual.abs()
    # |r| >= 1/2: P = exp(-(a - 1/2) / b) (1 - exp(-1 / b)) / 2, in the log domain
    tail = -(a - 0.5) / scale + torch.log(-torch.expm1(-1.0 / scale)) - math.log(2.0)
    # |r| < 1/2: P = 1 - (exp(-(1/2 - a) / b) + exp(-(1/2 + a) / b)) / 2
    centre = torch.log((1.0 - 0.5 * (torch.exp(-(0.5 - a).clamp_min(0) / scale) + torch.exp(-(0.5 + a) / scale))).clamp_min(1e-9))
    log_p = torch.where(a >= 0.5, tail, centre).clamp_min(-16 * math.log(2.0))
    return -log_p / math.log(2.0)


class ContextModel(nn.Module):
    """Predicts each context latent's centre and log2 scale (SPEC §5a) from its 7 inputs, for all context
    levels of a layout at once."""

    def __init__(self, layout: LatentLayout, width: int, device: torch.device | str = "cpu") -> None:
        super().__init__()
        self.width = width
        self.num_levels = len(layout.context_levels)
        self.fc1 = nn.Linear(ctx.CONTEXT_INPUTS, width)
        self.fc2 = nn.Linear(width, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.mul_(0.25)  # latents are integers of a few units: start near a flat prediction
            self.fc2.weight.mul_(0.25)
        self.level_bias = nn.Parameter(torch.zeros(self.num_levels, 2))
        sources, own, anchor, slot = [], [], [], []
        levels = layout.levels
        sentinel = layout.total_rows  # a zero appended to the latents
        for number, level in enumerate(layout.context_levels):
            offsets = np.array([levels[level.index - back].offset if level.index - back >= 0 else 0
                                for back in ctx.SOURCE_LEVELS])
            for anchors in (True, False):
                for x, y in ctx.pass_vertices(level, anchors):
                    rows = ctx.context_sources(levels, level.index, x, y, anchors)
                    sources.append(np.where(rows >= 0, rows + offsets, sentinel))
                    own.append(level.offset + y * (level.nx + 1) + x)
                    anchor.append(np.full(x.size, 1.0 if anchors else 0.0, dtype=np.float32))
                    slot.append(np.full(x.size, number))
        def tensor(parts: list[np.ndarray], dtype) -> torch.Tensor:
            return torch.from_numpy(np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype)).to(device)

        self.register_buffer("sources", tensor(sources, np.int64).reshape(-1), persistent=False)
        self.register_buffer("own", tensor(own, np.int64), persistent=False)
        self.register_buffer("anchor", tensor(anchor, np.float32), persistent=False)
        self.register_buffer("slot", tensor(slot, np.int64), persistent=False)
        self.to(device)

    def bits(self, latents: torch.Tensor) -> torch.Tensor:
        """Self-information (bits) of every context level's (quantized) latents ``(rows, 1)``, with the
        file's fixed-point weights (straight through)."""
        n = self.own.numel()
        if n == 0:
            return latents.new_zeros(())
        flat = torch.cat([latents.reshape(-1), latents.new_zeros(1)])
        inputs = flat.index_select(0, self.sources).view(n, 6).clamp(-ctx.INPUT_LIMIT, ctx.INPUT_LIMIT)
        inputs = torch.cat([inputs, self.anchor[:, None]], 1)
        w1, b1, w2, bias = (_fixed_point(t) for t in (self.fc1.weight, self.fc1.bias, self.fc2.weight, self.level_bias))
        out = torch.relu(inputs @ w1.t() + b1) @ w2.t() + bias.index_select(0, self.slot)
        residual = flat.index_select(0, self.own) - hard_round(out[:, 0])
        return laplace_bits(residual, out[:, 1]).sum()

    def fit(self, latents: torch.Tensor, steps: int, lr: float = 1e-2) -> float:
        """Fit the network to integer ``latents`` ``(rows, 1)`` (Adam, cosine-decayed learning rate, the
        lowest-rate state kept); returns that rate in bits."""
        latents = latents.detach()
        optimizer = torch.optim.Adam(self.parameters(), lr)
        best_bits, best_state = math.inf, None
        for step in range(steps + 1):
            bits = self.bits(latents)
            if float(bits.detach()) < best_bits:
                best_bits, best_state = float(bits.detach()), {k: v.detach().clone() for k, v in self.state_dict().items()}
            if step == steps:
                break
            for group in optimizer.param_groups:
                group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * step / steps))
            optimizer.zero_grad(set_to_none=True)
            bits.backward()
            optimizer.step()
        self.load_state_dict(best_state)
        return best_bits

    @torch.no_grad()
    def integer_params(self, latents: list[np.ndarray], layout: LatentLayout) -> ctx.ContextParams:
        """The file's integers: weights rounded to 1/4096 (clamped to the format's bounds) and each context
        level's latent range from its integer ``latents`` (one ``(rows, 1)`` array per level)."""

        def fixed(t: torch.Tensor, bound: int) -> np.ndarray:
            return torch.round(t * _STEP).clamp(-bound, bound).cpu().numpy().astype(np.int64)

        low = np.array([int(latents[level.index].min()) for level in layout.context_levels], dtype=np.int64)
        high = np.array([int(latents[level.index].max()) for level in layout.context_levels], dtype=np.int64)
        return ctx.ContextParams(
            fixed(self.fc1.weight, ctx.MAX_WEIGHT), fixed(self.fc1.bias, ctx.MAX_BIAS),
            fixed(self.fc2.weight, ctx.MAX_WEIGHT), fixed(self.level_bias, ctx.MAX_BIAS).reshape(-1, 2),
            low, high - low + 1,
        )
