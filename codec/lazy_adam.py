"""Adam for the latents of a large image, updating only the rows a step touched.

A batch of a large image reaches a small share of its latents (results/throughput: 11 M latents, a
16k-pixel batch's vertices a few hundred thousand); dense Adam would read and write all of them every
step. This is Adam on the touched rows only ("lazy" Adam, as TensorFlow's LazyAdam and torch's SparseAdam):
the moments of a row decay only when it is touched, the bias correction uses the global step. The rows
of a step may repeat (hash collisions, padding): their gradients are summed first, and every copy of a
row then computes and writes the same new values.
"""

from __future__ import annotations

import torch

__all__ = ["LazyAdam"]


class LazyAdam:
    """Adam over the rows of one ``(rows, D)`` tensor, stepped with the gradient of gathered copies."""

    def __init__(self, param: torch.Tensor, lr: float, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8) -> None:
        self.param, self.lr, self.betas, self.eps = param, lr, betas, eps
        self.exp_avg = torch.zeros_like(param)
        self.exp_avg_sq = torch.zeros_like(param)
        self._sum = torch.zeros_like(param)  # gradient of each row, summed over its copies; zero between steps
        self.steps = 0

    @torch.no_grad()
    def step(self, rows: torch.Tensor, grad: torch.Tensor) -> None:
        """Update ``param[rows]`` with ``grad`` ``(len(rows), D)``, the gradient of ``param[rows]``."""
        self.steps += 1
        beta1, beta2 = self.betas
        dim = self.param.shape[1]
        # flat element indices: 1-D gathers and scatters are several times faster than row-wise ones on CPU
        index = rows if dim == 1 else (rows[:, None] * dim + torch.arange(dim, device=rows.device)).reshape(-1)
        total, avg, avg_sq, param = (t.view(-1) for t in (self._sum, self.exp_avg, self.exp_avg_sq, self.param))
        total.scatter_add_(0, index, grad.reshape(-1))
        g = total.index_select(0, index)
        total.index_fill_(0, index, 0.0)
        m = avg.index_select(0, index).mul_(beta1).add_(g, alpha=1 - beta1)
        v = avg_sq.index_select(0, index).mul_(beta2).addcmul_(g, g, value=1 - beta2)
        avg.scatter_(0, index, m)
        avg_sq.scatter_(0, index, v)
        step_size = self.lr / (1 - beta1**self.steps)
        denom = (v / (1 - beta2**self.steps)).sqrt_().add_(self.eps)
        param.scatter_(0, index, param.index_select(0, index).addcdiv_(m, denom, value=-step_size))
