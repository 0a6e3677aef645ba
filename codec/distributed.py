"""Data-parallel training of one image over several processes (torch.distributed: gloo on CPU, nccl on GPU).

Launched with torchrun (``torchrun --nproc-per-node 2 -m shc.cli.main encode photo.png -o photo.shc``), every
process holds the whole model, starts from the same seed, draws its own random pixel batches and, after
each backward pass, averages its gradients with the others (all-reduce). The averaged gradient is the same
everywhere, so the models stay identical: every process scores the same states and keeps the same one,
and process 0 writes the file. Without torchrun's environment (``WORLD_SIZE`` unset or 1) nothing here
does anything.
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import torch
import torch.distributed as dist

__all__ = ["average_gradients", "init_from_environment", "rank", "world_size"]


def init_from_environment(device: str) -> int:
    """Join the process group that torchrun describes in the environment (once); this process's rank."""
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return 0
    if not dist.is_initialized():
        backend = "nccl" if torch.device(device).type == "cuda" else "gloo"
        dist.init_process_group(backend=backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank()


def world_size() -> int:
    return dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1


def rank() -> int:
    return dist.get_rank() if dist.is_available() and dist.is_initialized() else 0


def average_gradients(parameters: Iterable[torch.nn.Parameter]) -> None:
    """Replace every gradient by its mean over the processes (one all-reduce per tensor)."""
    size = world_size()
    if size == 1:
        return
    for parameter in parameters:
        if parameter.grad is not None:
            dist.all_reduce(parameter.grad, op=dist.ReduceOp.SUM)
            parameter.grad /= size
