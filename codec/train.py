"""The overfitting loop: Adam on latents, network and prior, with annealed quantization.

loss = MSE + λ · bpp, where bpp is the prior's self-information of the quantized latents per pixel; each
step sees a fresh random batch of pixel columns x rows. Every ``eval_every`` steps (and at the end) the
state is scored the way the file will be: the real file is assembled (hard-rounded latents range-coded
under the *integer* tables, int8 weights) and its size in bits counted, with the MSE of the 8-bit output. The best such
rate-distortion cost is what we keep, never the soft loss. Without entropy coding (the float16
baseline) there is no rate term and the score counts the file's exact size.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import torch

from shc.codec import distributed
from shc.codec.blend import Jitter
from shc.codec.lazy_adam import LazyAdam
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import EncoderSettings, pixels_per_step
from shc.codec.prior import FactorizedPrior
from shc.codec.quantize import hard_round, soft_round_gumbel, soft_round_noisy, temperature
from shc.codec.ratecontrol import LambdaController
from shc.codec.tables import LatentSection, assemble_file, code_latents

__all__ = ["HardScore", "TrainResult", "choose_weight_steps", "train"]


@dataclass
class HardScore:
    """The file's view of a training state: 8-bit MSE, real-size bpp estimate, and their RD cost."""

    step: int
    mse: float
    bpp: float
    cost: float

    @property
    def psnr_db(self) -> float:
        return float(10 * np.log10(1.0 / max(self.mse, 1e-12)))


@dataclass
class TrainResult:
    best: HardScore
    steps_run: int
    seconds: float
    history: list[HardScore] = field(default_factory=list)


@torch.no_grad()
def score(
    model: GridINR,
    grid: PixelGrid,
    target: torch.Tensor,
    lmbda: float,
    step: int,
    weight_steps: np.ndarray | None = None,
    sample: tuple[np.ndarray, np.ndarray] | None = None,
    latents: LatentSection | None = None,
    features: list[tuple[torch.Tensor, torch.Tensor]] | None = None,
) -> HardScore:
    """The RD cost as the decoder will see it: the size of the file this state writes (:func:`assemble_file`),
    and the MSE of its latents and quantized weights at 8-bit output, over the whole image or over the
    fixed ``sample`` (columns, rows) of a large one (:meth:`PixelGrid.scoring_sample`). ``latents``: the
    state's coded latents if already made (:func:`code_latents`); ``features``: the blended features of
    its strips if already made with the same latent decoder steps (:func:`strip_features`).

    ``target`` holds the image's 8-bit values ``(pixels, channels)`` (uint8: no float copy of the image)."""
    assembled = assemble_file(model, weight_steps, latents=latents)
    bits = 8 * len(assembled.data)
    params = model.parameters_as_used(True, weight_steps)
    if features is None:
        features = strip_features(model, grid, assembled.latents, params, sample)
    sq_err, count = 0.0, 0
    for h, pixels in features:
        x8 = torch.round(model.synthesize(h, params).clamp(0, 1) * 255) / 255
        sq_err += float(torch.sum((x8.t() - as_unit(target[pixels])) ** 2))
        count += x8.numel()
    mse = sq_err / count
    bpp = bits / grid.num_pixels
    return HardScore(step, mse, bpp, mse + lmbda * bpp)


@torch.no_grad()
def strip_features(
    model: GridINR, grid: PixelGrid, latents: np.ndarray, params: list[torch.Tensor],
    sample: tuple[np.ndarray, np.ndarray] | None = None,
) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """The MLP's input ``(L * F, n)`` and the pixel indices of every scoring strip, for stored ``latents``
    and the latent decoder's ``params``: what the weight-step search reuses while it tries the MLP's steps."""
    q_t = torch.from_numpy(latents.astype(np.float32)).to(model.latents.device)
    plan = grid.blend_plan()
    out = []
    strip = SCORE_STRIP_PIXELS if plan.all_vertices else SCORE_STRIP_PIXELS // 4  # per-strip vertex sets
    for columns, rows in grid.strip_columns_rows(max_pixels=strip, sample=sample):
        whole = columns.size == grid.width and rows.size == grid.height
        batch = plan.full() if whole else plan.batch(columns, rows)
        values = q_t if plan.all_vertices else q_t.index_select(0, batch.vertex_rows)
        out.append((model.blended_features(values, batch, not plan.all_vertices, params),
                    grid.pixel_indices(columns, rows)))
    return out


LARGE_IMAGE_SCORES = 5
"""At most this many scores of a large image's training run without rate control (see :func:`train`): each
range-codes every latent and renders a 1 M-pixel sample (~1.2 s at 50 MP, results/throughput)."""
LATENT_DECODER_TENSORS = 2
"""The latent decoder's weight and bias come first among the stored tensors (SPEC §3)."""
SCORE_STRIP_PIXELS = 1 << 20
"""Scoring renders strips of at most this many pixels (bounded memory at any size)."""


def as_unit(values: torch.Tensor) -> torch.Tensor:
    """8-bit values as float32 in [0, 1] (``v / 255``, the same float32 division as the decoder's reference)."""
    return values.to(torch.float32) / 255


def choose_weight_steps(
    model: GridINR, grid: PixelGrid, target: torch.Tensor, lmbda: float, factors: tuple[float, ...] = (2, 4, 8, 16),
    sample: tuple[np.ndarray, np.ndarray] | None = None,
    min_psnr_db: float | None = None,
) -> tuple[np.ndarray, HardScore]:
    """Per-tensor quantization steps of the stored weights, chosen for rate-distortion (SPEC §3 codes the
    integers with exp-Golomb codes, so a coarser step costs fewer bits).

    Greedy, one tensor at a time in file order: each step starts at the training-time int8 step and is
    made ``factors`` times coarser while the file's RD cost (real size, decoded 8-bit MSE) goes down, or,
    with ``min_psnr_db`` (a PSNR target), while the file gets smaller and its PSNR stays at least that:
    the fine knob that brings a file trained past its PSNR target back to it. Returns the steps and the
    score of the chosen state.
    """

    def better(trial: HardScore, incumbent: HardScore) -> bool:
        if min_psnr_db is None:
            return trial.cost < incumbent.cost
        return trial.psnr_db >= min_psnr_db and trial.bpp < incumbent.bpp

    base = model.int8_steps()
    steps = base.copy()
    latents = code_latents(model)  # only the weights change from trial to trial
    best = score(model, grid, target, lmbda, 0, steps, sample, latents)
    features = None  # once past the latent decoder (tensors 0, 1), the blended features stay the same
    for index in range(base.size):
        if index == LATENT_DECODER_TENSORS:
            features = strip_features(model, grid, latents.latents, model.parameters_as_used(True, steps), sample)
        for factor in factors:
            trial = steps.copy()
            trial[index] = np.float32(base[index] * factor)
            scored = score(model, grid, target, lmbda, 0, trial, sample, latents, features)
            if not better(scored, best):
                break
            steps, best = trial, scored
    return steps, best


def lr_factor(progress: float, final: float) -> float:
    """Cosine decay of every learning rate from 1x to ``final`` x over the run."""
    return final + (1.0 - final) * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def quantize_latents(latents: torch.Tensor, step: int, noise_steps: int, soft_steps: int, entropy_coded: bool,
                     settings: EncoderSettings | None = None) -> torch.Tensor:
    """The latents as step ``step`` uses them: additive uniform noise, then Gumbel-annealed soft rounding
    (or, ``settings.proxy == "softround"``, noisy soft rounding of narrowing softness), then hard rounding
    (straight-through); float16 rounding for the no-entropy baseline."""
    if not entropy_coded:
        return latents + (latents.detach().half().float() - latents.detach())
    if settings is not None and settings.proxy == "softround" and step <= soft_steps:
        progress = (step - 1) / max(soft_steps - 1, 1)
        softness = settings.softness_start + (settings.softness_end - settings.softness_start) * progress
        return soft_round_noisy(latents, softness)
    if step <= noise_steps:
        return latents + torch.empty_like(latents).uniform_(-0.5, 0.5)
    if step <= soft_steps:
        return soft_round_gumbel(latents, temperature((step - noise_steps) / max(soft_steps - noise_steps, 1)))
    return hard_round(latents)


def rate_bits(model: GridINR, prior: FactorizedPrior, q: torch.Tensor) -> torch.Tensor:
    """Self-information of (soft- or hard-) quantized latents under the learned prior, all groups at once."""
    return prior.tabulated_bits(q, model.latent_channels)


def prefix_levels(
    fraction: float, num_pixels: int, num_levels: int, rng: np.random.Generator, device: torch.device
) -> torch.Tensor | None:
    """Per batch pixel, how many levels it is rendered from: all of them, except for about ``fraction`` of
    the pixels, which get a random prefix of 1 .. L - 1 levels (uniform), so that the network learns to
    render a level-of-detail preview; None when ``fraction`` is 0 (or there is one level)."""
    if fraction <= 0 or num_levels < 2:
        return None
    kept = np.full(num_pixels, num_levels, dtype=np.int64)
    chosen = rng.random(num_pixels) < fraction
    kept[chosen] = rng.integers(1, num_levels, size=int(chosen.sum()))
    return torch.from_numpy(kept).to(device)


def train(
    model: GridINR,
    prior: FactorizedPrior,
    grid: PixelGrid,
    target: torch.Tensor,
    settings: EncoderSettings,
    progress: Callable[[int, HardScore | None, float], None] | None = None,
    seed: int = 0,
    controller: LambdaController | None = None,
    step_hook: Callable[[int, torch.Tensor, GridINR], None] | None = None,
) -> TrainResult:
    """Fit ``model`` and ``prior`` to ``target`` (the image's 8-bit values ``(pixels, channels)``, uint8);
    leaves them in the best scored state.

    Each step trains on a fresh random batch of about ``settings.batch_pixels`` pixels (the whole image
    when it is smaller); the rate term covers every latent, or, on large images, estimates the rate of all
    from the batch's vertices (:mod:`shc.codec.blend`, :class:`LazyAdam`). With a rate ``controller``, λ follows
    the controller (starting from its own λ, not ``settings.lmbda``) and the state kept is the one it
    prefers (the best that meets its target) instead of the lowest RD cost. ``step_hook(step, mse, model)``
    sees every step's training MSE before the update (the paper's way of counting: ``studies/paper/run.py``).
    """
    rng = np.random.default_rng(seed + 1_000_003 * distributed.rank())  # each process its own batches
    sample = grid.scoring_sample(settings.score_pixels)
    entropy_coded = model.header.range_coded
    plan = grid.blend_plan()
    # Large images: each step gathers, quantizes, rates and updates only its batch's vertices (lazy Adam;
    # the rate of those is weighted into an unbiased estimate of the whole table's). Otherwise every latent.
    # (Data-parallel training averages dense gradients: it keeps the dense path.)
    gathered = not plan.all_vertices and distributed.world_size() == 1
    num_pixels = target.shape[0]
    num_levels = model.header.config.num_levels
    # A large image's score (range-coding millions of latents, rendering a million pixels) costs ~100 of its
    # steps: without rate control, which steers from every score, it is scored at most LARGE_IMAGE_SCORES times.
    eval_every = settings.eval_every
    if gathered and controller is None:
        eval_every = max(eval_every, -(-settings.steps // LARGE_IMAGE_SCORES))
    network = model.network_parameters()
    lr_mlp = settings.lr_network if settings.lr_mlp is None else settings.lr_mlp
    groups = [
        {"params": network[:LATENT_DECODER_TENSORS], "lr": settings.lr_network},
        {"params": network[LATENT_DECODER_TENSORS:], "lr": lr_mlp},
        {"params": prior.parameters(), "lr": settings.lr_prior},
    ]
    latent_adam = LazyAdam(model.latents.data, settings.lr_latents, eps=settings.latent_eps) if gathered else None
    if not gathered:
        groups.insert(0, {"params": [model.latents], "lr": settings.lr_latents, "eps": settings.latent_eps})
    # one kernel per parameter group, faster than the per-tensor loop (results/speed-cpu/README.md)
    optimizer = torch.optim.Adam(groups, fused=True)
    base_lrs = [group["lr"] for group in optimizer.param_groups]
    start = time.perf_counter()
    soft_steps = int(settings.anneal * settings.steps)
    if settings.subpixel_mode not in ("jitter", "box"):
        msg = f"subpixel_mode must be 'jitter' or 'box', got {settings.subpixel_mode!r}"
        raise ValueError(msg)
    box = settings.subpixels if settings.subpixel_mode == "box" else 1
    batch_pixels = pixels_per_step(settings, grid.num_pixels)  # box training renders box^2 samples a pixel
    whole_image = batch_pixels >= grid.num_pixels
    noise_steps = int(settings.noise * settings.steps)
    best: HardScore | None = None
    best_state = None
    history: list[HardScore] = []
    for step in range(1, settings.steps + 1):
        if whole_image:
            columns, rows = np.arange(grid.width), np.arange(grid.height)
        else:
            columns, rows = grid.random_columns_rows(batch_pixels, rng, grid.batch_run)
        if box > 1:
            batch = plan.batch(np.repeat(columns, box), np.repeat(rows, box), Jitter.box(box, columns.size, rows.size))
        elif settings.subpixels > 1:
            batch = plan.batch(columns, rows, Jitter.draw(settings.subpixels, columns.size, rows.size, rng))
        else:
            batch = plan.full() if whole_image else plan.batch(columns, rows)
        if gathered:
            raw = model.latents.detach().index_select(0, batch.vertex_rows).requires_grad_()
            channels, rate_weights = model.latent_channels.index_select(0, batch.vertex_rows), batch.rate_weights
        else:
            raw, channels, rate_weights = model.latents, model.latent_channels, None
        frozen = settings.freeze_latents_final and step > soft_steps  # the final phase: only the networks learn
        q = quantize_latents(raw.detach() if frozen else raw, step, noise_steps, soft_steps, entropy_coded, settings)
        levels_kept = prefix_levels(settings.prefix_fraction, batch.num_pixels, num_levels, rng, q.device)
        x_hat = model.render(q, batch, gathered, quantize_weights=step > soft_steps, levels_kept=levels_kept)
        if box > 1:  # each pixel: the mean of its box x box sub-pixel samples
            x_hat = x_hat.view(rows.size, box, columns.size, box, -1).mean(dim=(1, 3)).reshape(-1, x_hat.shape[1])
        mse = torch.mean((x_hat - as_unit(target[grid.pixel_indices(columns, rows)])) ** 2)
        if entropy_coded:
            bpp = prior.tabulated_bits(q, channels, weights=rate_weights) / num_pixels
        else:
            bpp = mse.new_zeros(())
        lmbda = settings.lmbda if controller is None else controller.lmbda
        loss = mse + lmbda * bpp
        if step_hook is not None:
            step_hook(step, mse.detach(), model)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(p for group in optimizer.param_groups for p in group["params"])
        decay = lr_factor(step / settings.steps, settings.lr_final)
        for group, base in zip(optimizer.param_groups, base_lrs):
            group["lr"] = base * decay
        optimizer.step()
        if latent_adam is not None and not frozen:
            latent_adam.lr = settings.lr_latents * decay
            latent_adam.step(batch.vertex_rows, raw.grad)

        scored = None
        if step % eval_every == 0 or step == settings.steps:
            scored = score(model, grid, target, lmbda, step, sample=sample)
            history.append(scored)
            if controller is not None:
                keep = controller.prefer(scored, best)
                controller.observe(scored)
            else:
                keep = best is None or scored.cost < best.cost
            if keep:
                best = scored
                best_state = (copy.deepcopy(model.state_dict()), copy.deepcopy(prior.state_dict()))
        if progress is not None:
            progress(step, scored, float(bpp.detach()))
    assert best is not None and best_state is not None
    model.load_state_dict(best_state[0])
    prior.load_state_dict(best_state[1])
    return TrainResult(best, settings.steps, time.perf_counter() - start, history)
