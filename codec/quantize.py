"""Annealed quantization of the latents to integers (training only).

Soft phase: stochastic Gumbel annealing (Yang et al. 2020, "Improving Inference for Neural Image
Compression"): each value rounds down or up with a relaxed, Gumbel-perturbed one-hot whose sharpness grows
as the temperature decays; at high temperature it is close to random rounding, at low temperature to hard
rounding, and it is differentiable throughout. Hard phase: ``round`` with a straight-through gradient.
"""

from __future__ import annotations

import math

import torch

__all__ = ["hard_round", "soft_round", "soft_round_noisy", "soft_round_gumbel", "temperature"]


def hard_round(x: torch.Tensor) -> torch.Tensor:
    """Round to the nearest integer; the gradient passes straight through."""
    return x + (torch.round(x) - x).detach()


def soft_round(x: torch.Tensor, softness: float) -> torch.Tensor:
    """Agustsson & Theis's soft rounding (C3, Cool-chic 3+): ``m + tanh(r / T) / (2 tanh(1 / 2T))`` with
    ``m = floor(x) + 1/2`` and ``r = x - m``: the identity as ``T`` -> inf, rounding as ``T`` -> 0,
    continuous and differentiable everywhere."""
    middle = torch.floor(x) + 0.5
    alpha = 1.0 / softness
    return middle + torch.tanh(alpha * (x - middle)) / (2.0 * math.tanh(alpha / 2.0))


def soft_round_noisy(x: torch.Tensor, softness: float) -> torch.Tensor:
    """The anchors' training proxy: ``s_T(s_T(x) + u)``, ``u`` uniform on [-1/2, 1/2] (C3's
    ``soft_round(soft_round(y) + noise)``): the same value feeds the rate and the synthesis."""
    return soft_round(soft_round(x, softness) + torch.empty_like(x).uniform_(-0.5, 0.5), softness)


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
