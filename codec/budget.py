"""How long an encode will take, and how many steps fit a time budget (``--minutes``).

Before training, :func:`plan_training` times the work on this machine rather than assuming it: a few
training steps of the very model about to be trained (a copy, under a forked random state, so the file
written is the same as without the plan), one scoring of a state (what every ``eval_every`` steps costs),
a few steps of the context model's fit, the file's assembly and the decode of its first strip (what follows
training). From these it estimates the whole encode (:class:`TrainingPlan`), and with a budget in minutes it
picks the most steps whose estimate fits. At Kodak's size the timing costs a few tenths of a second besides
the first step's one-off warm-up, which the training would otherwise pay.
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace

import torch

from shc.format.container import read_file
from shc.format.decoder import Synthesis
from shc.format.entropy import file_latents

from shc.codec import distributed
from shc.codec.context import ContextModel
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import EncoderSettings, pixels_per_step
from shc.codec.prior import FactorizedPrior
from shc.codec.tables import assemble_file, with_context_width
from shc.codec.train import LARGE_IMAGE_SCORES, score, train

__all__ = ["BudgetError", "Calibration", "TrainingPlan", "calibrate", "plan_training", "scores_in_run"]

CALIBRATION_SECONDS = 1.0
"""Training steps are timed until this long has passed (after the first step, a one-off warm-up) ..."""
CALIBRATION_STEPS = (3, 30)
"""... but at least the first and at most the second of these many steps. The timed run compresses the
noise, annealing and hard-rounding phases into its steps in their proportions, so its mean is the run's."""
DISTRIBUTED_CALIBRATION_STEPS = 5
"""Under torchrun every process must stop at the same step (each step averages gradients): a fixed count."""
CONTEXT_PROBE_STEPS = 10
"""Steps of the context model's fit that are timed (it runs ``settings.context_fit_steps`` after training)."""
WEIGHT_SEARCH_SCORES_PER_TENSOR = 1.25
"""The weight-step search after training (:func:`shc.codec.train.choose_weight_steps`) scores the file once,
then one to four times a stored tensor, the later ones without blending again: counted as 1 + 1.25 scores a
tensor (8-15 score times were seen for the 8 tensors of Kodak and smaller encodes; a rough figure, the rest
of the tail is measured)."""
BUDGET_MARGIN = 0.1
"""``minutes`` picks the steps whose estimate is at least this fraction under the budget (estimates of short
encodes here were 3-11 % off either way)."""
DECODE_PROBE_SECONDS = 0.25
"""The final decode is timed on its first strips for this long (all of it when it takes less)."""
MAX_STEPS = 10**8


class BudgetError(ValueError):
    """The time budget is smaller than what the image costs before and after its training."""


@dataclass(frozen=True)
class Calibration:
    """What the parts of an encode cost on this machine, measured before training."""

    step_seconds: float
    """One training step, the mean over the timed steps after the first."""
    score_seconds: float
    """One scoring of a state, with the copy of the state it keeps when it is the best so far."""
    tail_seconds: float
    """After training: the context model's fit, the weight-step search, the file's assembly and its decode."""
    steps_timed: int
    seconds: float
    """What the calibration itself took."""


@dataclass(frozen=True)
class TrainingPlan:
    """The training an encode will do and what it will cost: known before the first step."""

    steps: int
    pixels_per_step: int
    num_pixels: int
    estimate_seconds: float
    """The whole encode, from its start to the decoded file's check."""
    calibration: Calibration
    minutes: float | None = None
    """The budget the steps were chosen for, if any."""

    @property
    def passes_per_pixel(self) -> float:
        """How often training sees each pixel, on average: steps x pixels per step / pixels."""
        return self.steps * self.pixels_per_step / self.num_pixels

    def describe(self) -> str:
        """One line: steps, pixels per step, passes per pixel, the estimate and what it rests on."""
        fit = "" if self.minutes is None else f" to fit {self.minutes:g} min"
        return (f"{self.steps} steps x {self.pixels_per_step} pixels = {self.passes_per_pixel:.1f} passes per "
                f"pixel{fit}; estimate {duration(self.estimate_seconds)} "
                f"({self.calibration.step_seconds * 1000:.1f} ms a step over {self.calibration.steps_timed} "
                f"timed steps, {duration(self.calibration.tail_seconds)} for the file)")


def duration(seconds: float) -> str:
    """``42.0 s``, ``3 min 05 s``, ``1 h 02 min``."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    if whole < 3600:
        return f"{whole // 60} min {whole % 60:02d} s"
    return f"{whole // 3600} h {whole // 60 % 60:02d} min"


@contextlib.contextmanager
def _random_state_kept(device: torch.device) -> Iterator[None]:
    """Whatever runs inside draws from torch's random generators (of the CPU and of ``device``) and leaves
    them as they were: the encode after it draws what it would have drawn without it."""
    cpu = torch.get_rng_state()
    accelerator = {"cuda": lambda: torch.cuda.get_rng_state(device), "mps": torch.mps.get_rng_state}.get(device.type)
    saved = None if accelerator is None else accelerator()
    try:
        yield
    finally:
        torch.set_rng_state(cpu)
        if device.type == "cuda":
            torch.cuda.set_rng_state(saved, device)
        elif device.type == "mps":
            torch.mps.set_rng_state(saved)


class _Enough(Exception):
    """Raised from the timing run's progress callback to stop it."""


def gathered_steps(grid: PixelGrid) -> bool:
    """Whether training takes each step through its batch's vertices only (large images; the rule of
    :func:`shc.codec.train.train`), which also bounds how often it scores."""
    return not grid.blend_plan().all_vertices and distributed.world_size() == 1


def scores_in_run(settings: EncoderSettings, steps: int, gathered: bool, rate_controlled: bool) -> int:
    """How many times a run of ``steps`` scores its state: every ``eval_every`` steps and at the last, a large
    image's run without rate control at most ``LARGE_IMAGE_SCORES`` times (as :func:`train` does)."""
    every = settings.eval_every
    if gathered and not rate_controlled:
        every = max(every, -(-steps // LARGE_IMAGE_SCORES))
    return -(-steps // every)


def calibrate(model: GridINR, prior: FactorizedPrior, grid: PixelGrid, target: torch.Tensor,
              settings: EncoderSettings, context_width: int, seed: int = 0) -> Calibration:
    """Time the parts of an encode of ``target`` with this model on this machine (:class:`Calibration`),
    on copies of ``model`` and ``prior``, with torch's random state restored after: the encode that follows
    trains and writes exactly what it would have without this (numpy's global state is not drawn from: the
    trainer has a generator of its own)."""
    start = time.perf_counter()
    with _random_state_kept(model.latents.device):
        trial_model, trial_prior = copy.deepcopy(model), copy.deepcopy(prior)
        step_seconds, steps_timed = _time_steps(trial_model, trial_prior, grid, target, settings, seed)
        sample = grid.scoring_sample(settings.score_pixels)
        t0 = time.perf_counter()
        score(trial_model, grid, target, settings.lmbda, 0, sample=sample)
        copy.deepcopy((trial_model.state_dict(), trial_prior.state_dict()))
        score_seconds = time.perf_counter() - t0
        tail = _time_tail(trial_model, grid, settings, context_width, score_seconds)
    return Calibration(step_seconds, score_seconds, tail, steps_timed, time.perf_counter() - start)


def _time_steps(model: GridINR, prior: FactorizedPrior, grid: PixelGrid, target: torch.Tensor,
                settings: EncoderSettings, seed: int) -> tuple[float, int]:
    """Mean seconds of a training step after the first, and how many steps were timed."""
    fewest, most = CALIBRATION_STEPS
    by_count = distributed.world_size() > 1
    if by_count:
        fewest = most = DISTRIBUTED_CALIBRATION_STEPS
    ticks: list[float] = []

    def tick(step: int, scored, bpp: float) -> None:
        ticks.append(time.perf_counter())
        if step >= most or (not by_count and step >= fewest and ticks[-1] - ticks[0] >= CALIBRATION_SECONDS):
            raise _Enough

    # one step more than it runs: the run never reaches its last step, which would score
    trial = replace(settings, steps=most + 1, eval_every=most + 1)
    try:
        train(model, prior, grid, target, trial, tick, seed)
    except _Enough:
        pass
    return (ticks[-1] - ticks[0]) / (len(ticks) - 1), len(ticks) - 1


def _time_tail(model: GridINR, grid: PixelGrid, settings: EncoderSettings, context_width: int,
               score_seconds: float) -> float:
    """Seconds after training: the context fit (timed steps), the weight-step search (in scores), the file's
    assembly and its decode (the first strip's, scaled to the image)."""
    t0 = time.perf_counter()
    data = assemble_file(model).data
    assemble_seconds = time.perf_counter() - t0
    seconds = assemble_seconds + _decode_seconds(data, grid.width, grid.height)
    if not model.header.range_coded:
        return seconds
    seconds += (1 + WEIGHT_SEARCH_SCORES_PER_TENSOR * model.int8_steps().size) * score_seconds
    context_header = with_context_width(model.header, context_width)
    if context_width > 0 and context_header.layout.context_levels:
        candidate = ContextModel(context_header.layout, context_width, model.latents.device)
        t0 = time.perf_counter()
        candidate.fit(torch.round(model.latents.detach()), CONTEXT_PROBE_STEPS)
        fit_step = (time.perf_counter() - t0) / CONTEXT_PROBE_STEPS
        seconds += fit_step * settings.context_fit_steps + 2 * assemble_seconds  # fit, latents coded both ways
    return seconds


def _decode_seconds(data: bytes, width: int, height: int) -> float:
    """The decoder's time for the whole file: its set-up, then its strips (rendered side by side in threads)
    for ``DECODE_PROBE_SECONDS`` or to the end, the rows left at the pace of those after the first."""
    t0 = time.perf_counter()
    parsed = read_file(data)
    synthesis = Synthesis(parsed, file_latents(parsed))
    rows, ticks = [], [time.perf_counter()]
    for _, strip in synthesis.render_strips(width, height):
        rows.append(strip.shape[0])
        ticks.append(time.perf_counter())
        if ticks[-1] - ticks[0] >= DECODE_PROBE_SECONDS:
            break
    if len(rows) == 1 or sum(rows) == height:
        return ticks[-1] - t0
    # the first strip also waits for what every strip shares (the columns' taps, the threads' start)
    return ticks[1] - t0 + (ticks[-1] - ticks[1]) * (height - rows[0]) / sum(rows[1:])


def plan_training(model: GridINR, prior: FactorizedPrior, grid: PixelGrid, target: torch.Tensor,
                  settings: EncoderSettings, *, start: float, context_width: int, rate_controlled: bool,
                  minutes: float | None = None, seed: int = 0) -> TrainingPlan:
    """The plan of an encode that began at ``start`` (``time.perf_counter()``): :func:`calibrate`, then the
    steps (``settings.steps``, or with ``minutes`` the most whose estimate is at most ``1 - BUDGET_MARGIN``
    of the budget; a :class:`BudgetError` when not one step fits) and the estimate of the whole encode."""
    calibration = calibrate(model, prior, grid, target, settings, context_width, seed)
    elapsed = time.perf_counter() - start
    gathered = gathered_steps(grid)

    def estimate(steps: int) -> float:
        scores = scores_in_run(settings, steps, gathered, rate_controlled)
        return (elapsed + steps * calibration.step_seconds + scores * calibration.score_seconds
                + calibration.tail_seconds)

    steps = settings.steps
    if minutes is not None:
        if not (math.isfinite(minutes) and minutes > 0):
            msg = f"minutes must be a number > 0, got {minutes}"
            raise ValueError(msg)
        steps = _agreed(_most_steps(estimate, minutes * 60 * (1 - BUDGET_MARGIN), minutes))
    return TrainingPlan(steps, pixels_per_step(settings, grid.num_pixels), grid.num_pixels, estimate(steps),
                        calibration, minutes)


def _most_steps(estimate, budget: float, minutes: float) -> int:
    """The most steps whose ``estimate`` is within ``budget`` seconds (a binary search: the estimate grows
    with the steps, up to the odd score that a step more or less adds)."""
    if estimate(1) > budget:
        msg = (f"{minutes:g} minutes leave no time to train this image: what it costs besides training comes "
               f"to about {duration(estimate(0))} here")
        raise BudgetError(msg)
    low, high = 1, MAX_STEPS
    while low < high:
        middle = (low + high + 1) // 2
        if estimate(middle) <= budget:
            low = middle
        else:
            high = middle - 1
    return low


def _agreed(steps: int) -> int:
    """Under torchrun, the steps that process 0 chose (each process timed its own run)."""
    if distributed.world_size() == 1:
        return steps
    choice = [steps]
    torch.distributed.broadcast_object_list(choice, src=0)
    return int(choice[0])
