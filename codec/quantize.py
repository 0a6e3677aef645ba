"""Annealed quantization of the latents to integers (training only).

Soft phase: stochastic Gumbel annealing (Yang et al. 2020, "Improving Inference for Neural Image
Compression"): each value rounds down or up with a relaxed, Gumbel-perturbed one-hot whose sharpness grows
as the temperature decays; at high temperature it is close to random rounding, at low temperature to hard
rounding, and it is differentiable throughout. Hard phase: ``round`` with a straight-through gradient.
"""

from __future__ import annotations

import math

import torch

__all__ = ["hard_round", "soft_round_gumbel", "temperature"]


def hard_round(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer; the gradient passes straight through."""
    return x + (torch.round(x) - x).detach()


def soft_round_gumbel(x: torch.Tensor, tau: float) -> torch.Tensor:
    """Stochastic Gumbel annealing of ``x`` at temperature ``tau`` > 0.

    The two-way Gumbel-softmax over (round down, round up) is a sigmoid of the logit difference plus the
    difference of two Gumbel samples, which is a standard logistic sample: one random number per value.
    One autograd node (:class:`_SoftRoundGumbel`): the derivative is formed in the forward pass.
    """
    return _SoftRoundGumbel.apply(x, tau)


class _SoftRoundGumbel(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x: torch.Tensor, tau: float) -> torch.Tensor:  # type: ignore[override]
        floor = torch.floor(x)
        frac = x - floor
        inside = (frac > 1e-6) & (frac < 1.0 - 1e-6)  # where the clamp below passes the gradient
        frac.clamp_(1e-6, 1.0 - 1e-6)
        down = 1.0 - frac
        # logits of rounding down / up: the closer integer is more likely, sharper as tau -> 0
        logit_gap = (torch.atanh(frac) - torch.atanh(down)) / tau  # logit(up) - logit(down)
        u = torch.rand_like(x).clamp_(1e-7, 1.0 - 1e-7)
        logistic = torch.log(u) - torch.log1p(-u)
        up = torch.sigmoid((logit_gap + logistic) / tau)
        # d up / d x = up (1 - up) / tau * (1 / (1 - frac^2) + 1 / (1 - down^2)) / tau inside the clamp
        slope = up * (1.0 - up) / (tau * tau) * (1.0 / (1.0 - frac * frac) + 1.0 / (1.0 - down * down))
        ctx.save_for_backward(slope * inside)
        return floor + up

    @staticmethod
    def backward(ctx, grad: torch.Tensor):  # type: ignore[override]
        (slope,) = ctx.saved_tensors
        return grad * slope, None


def temperature(progress: float, tau_start: float = 0.5, tau_end: float = 0.05) -> float:
    """Exponential decay from ``tau_start`` to ``tau_end`` as ``progress`` goes 0 -> 1."""
    progress = min(max(progress, 0.0), 1.0)
    return tau_start * math.exp(progress * math.log(tau_end / tau_start))
