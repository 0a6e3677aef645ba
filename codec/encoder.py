"""Encoding an image: settings -> header -> training -> integer tables -> range coding -> bytes.

The encoder ends like the decoder starts: it parses its own bytes with :mod:`shc.format` and renders them
with the normative numpy decoder, so the PSNR it reports is the PSNR a user gets from the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from shc.format import constants as C
from shc.format.container import read_file
from shc.format.decoder import Synthesis
from shc.format.entropy import file_latents
from shc.format.header import Header, ModelConfig
from shc.format.metadata import metadata_payload
from shc.images import SourceImage, load_image
from shc.metrics import channel_squared_errors, psnr_from_mse

from shc.codec.blend import vertex_matrix_fits
from shc.codec.budget import TrainingPlan, plan_training
from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import EncoderSettings, level_cells, settings_for, settings_for_image, steps_for_image
from shc.codec.prior import FactorizedPrior
from shc.codec.ratecontrol import LambdaController, RateTarget, start_settings
from shc.codec.tables import adopt_context, assemble_file
from shc.codec.train import HardScore, TrainResult, choose_weight_steps, train

__all__ = ["EncodeResult", "RateTargetError", "encode_image", "make_header"]


@dataclass
class EncodeResult:
    """The file and what the decoder sees of it."""

    data: bytes
    width: int
    height: int
    psnr_db: float
    encode_seconds: float
    settings: EncoderSettings
    training: TrainResult
    final_lmbda: float
    """λ at the end of training: the settings' λ, or where rate control steered it."""
    psnr_alpha_db: float | None = None
    """PSNR of the decoded alpha channel (``psnr_db`` is RGB only); None for an RGB image."""
    channels: int = C.CHANNELS_RGB
    plan: TrainingPlan | None = None
    """The steps, passes per pixel and time estimate made before training (with ``minutes`` or ``estimate``);
    None when no plan was asked for."""

    @property
    def num_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return len(self.data) * 8 / (self.width * self.height)


def make_header(width: int, height: int, settings: EncoderSettings, channels: int = C.CHANNELS_RGB) -> Header:
    """The header for an image: the preset's architecture with ``channels`` outputs (3: RGB, 4: RGBA), levels
    capped at the image's own resolution."""
    config = ModelConfig(
        num_levels=settings.num_levels,
        log2_hashmap_size=settings.log2_hashmap_size,
        latent_dim=settings.latent_dim,
        feat_dim=settings.feat_dim,
        mlp_width=settings.mlp_width,
        mlp_depth=settings.mlp_depth,
        num_groups=min(settings.num_groups, settings.num_levels),
        interpolation=settings.interpolation,
        channels=channels,
    )
    cells = tuple(level_cells(settings, width, height))
    coding = C.LATENTS_RANGE_CODED if settings.entropy_coding else C.LATENTS_FLOAT16
    header = Header(width, height, config, cells, coding)
    header.validate()
    return header


def _context_width(settings: EncoderSettings, cells: list[tuple[int, int]]) -> int:
    """The context model's width for this grid: the preset's, when the latents are entropy-coded scalars
    (D = 1) and few enough to fit the model to all at once (large images keep factorized tables for now)."""
    if not settings.entropy_coding or settings.latent_dim != 1 or not vertex_matrix_fits(cells):
        return 0
    return settings.context_width


def encode_image(
    image: Any,
    preset: str = "default",
    quality: float | None = None,
    steps: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    settings: EncoderSettings | None = None,
    progress: Callable[[int, HardScore | None, float], None] | None = None,
    entropy_coding: bool = True,
    rate_target: RateTarget | None = None,
    strip: bool = False,
    background: tuple[int, int, int] | None = None,
    step_hook: Callable[[int, Any, Any], None] | None = None,
    minutes: float | None = None,
    estimate: bool = False,
    on_plan: Callable[[TrainingPlan], None] | None = None,
) -> EncodeResult:
    """Encode ``image`` (path, PIL image, ``(H, W, 3 | 4)`` uint8 array or :class:`shc.images.SourceImage`)
    and check the result by decoding it.

    An image with alpha is coded as RGBA (the network's fourth output, trained with the same MSE as the
    colours), unless ``background`` (r, g, b) flattens it; its ICC profile and EXIF block go into the file
    unless ``strip`` (:func:`shc.images.load_image`).

    ``entropy_coding=False`` (ignored when ``settings`` are given) writes the no-entropy baseline.
    ``rate_target`` steers λ during training toward a size, bpp or PSNR (:mod:`shc.codec.ratecontrol`);
    without an explicit ``quality`` the architecture is that of the quality whose typical result is the
    target. A size target is a hard cap: a :class:`RateTargetError` if no file of this image can be that small.

    Without ``settings`` and ``steps``, images over 6.3 MP train longer than the preset says
    (:func:`shc.codec.presets.steps_for_image`). ``minutes`` bounds the encode's time instead: before
    training, a few steps of the model are timed on this machine (:mod:`shc.codec.budget`) and the steps are
    the most whose estimate fits (a :class:`shc.codec.budget.BudgetError` if none does); it replaces
    ``steps`` and the settings' steps, so it cannot be given with ``steps``. ``estimate`` makes the same plan
    for the steps asked for. A plan made is passed to ``on_plan`` before the first step and carried by the
    result (:attr:`EncodeResult.plan`); the timing leaves the file as it would be without it.
    """
    if minutes is not None and steps is not None:
        msg = "give minutes or steps, not both: minutes picks the steps"
        raise ValueError(msg)
    start = time.perf_counter()
    source = load_image(image, background=background, strip=strip)
    height, width, channels = source.pixels.shape
    if settings is None:
        if rate_target is not None and quality is None:
            settings, quality = start_settings(rate_target, source.pixels, preset, steps, entropy_coding)
        else:
            settings = settings_for(preset, quality, steps, entropy_coding)
        settings = settings_for_image(settings, width, height)
        if steps is None and minutes is None:
            settings = replace(settings, steps=steps_for_image(settings, width, height))
    torch.manual_seed(seed)
    np.random.seed(seed)
    header = make_header(width, height, settings, channels)
    dev = torch.device(device)
    model = GridINR(header).to(dev)
    prior = FactorizedPrior(header.config.num_tables).to(dev)
    grid = PixelGrid(header, width, height, dev)
    values = source.pixels.reshape(-1, channels)  # uint8, shared with the image: no float copy of it
    target = torch.from_numpy(values if values.flags.writeable else values.copy()).to(dev)
    aim = None if rate_target is None or not header.range_coded else _without_metadata(rate_target, source,
                                                                                      width * height)
    plan = None
    if minutes is not None or estimate:  # the steps are known before the first: the schedules depend on them
        plan = plan_training(model, prior, grid, target, settings, start=start, minutes=minutes, seed=seed,
                             context_width=_context_width(settings, header.level_cells),
                             rate_controlled=aim is not None)
        settings = replace(settings, steps=plan.steps)
        if on_plan is not None:
            on_plan(plan)
    controller = None if aim is None else LambdaController(aim, settings.lmbda, settings.steps)
    result = train(model, prior, grid, target, settings, progress, seed, controller, step_hook)

    weight_steps = None
    if header.range_coded:
        adopt_context(model, _context_width(settings, header.level_cells), settings.context_fit_steps)
        lmbda = settings.lmbda if controller is None else controller.lmbda
        psnr_floor = rate_target.value if controller is not None and rate_target.metric == "psnr" else None
        sample = grid.scoring_sample(settings.score_pixels)
        weight_steps, _ = choose_weight_steps(model, grid, target, lmbda, sample=sample, min_psnr_db=psnr_floor)
    data = assemble_file(model.cpu(), weight_steps, icc_profile=source.icc_profile, exif=source.exif).data
    if rate_target is not None and rate_target.hard_cap:
        data = _fit_under_cap(model, weight_steps, data, rate_target.max_bytes(width * height),
                              icc_profile=source.icc_profile, exif=source.exif)

    psnr_rgb, psnr_alpha = decoded_psnr(data, source.pixels)
    return EncodeResult(
        data=data,
        width=width,
        height=height,
        psnr_db=psnr_rgb,
        psnr_alpha_db=psnr_alpha,
        channels=channels,
        encode_seconds=time.perf_counter() - start,
        settings=settings,
        training=result,
        final_lmbda=settings.lmbda if controller is None else controller.lmbda,
        plan=plan,
    )


def decoded_psnr(data: bytes, pixels: np.ndarray) -> tuple[float, float | None]:
    """PSNR of the colours and of alpha (None for RGB) of the file ``data`` as the decoder renders it, against
    ``pixels``: strip by strip, so that neither the decoded image nor a float copy of it is ever whole."""
    parsed = read_file(data)
    height, width, channels = pixels.shape
    synthesis = Synthesis(parsed, file_latents(parsed))
    errors = np.zeros(channels)
    for top, strip in synthesis.render_strips(width, height):
        errors += channel_squared_errors(strip, pixels[top : top + strip.shape[0]])
    count = width * height
    alpha = psnr_from_mse(errors[3] / count) if channels == 4 else None
    return psnr_from_mse(errors[:3].sum() / (3 * count)), alpha


def _without_metadata(rate_target: RateTarget, source: SourceImage, num_pixels: int) -> RateTarget:
    """The target for the files training scores, which leave out the META section: a bits target less the
    bytes that the ICC profile and EXIF will add to the written file."""
    if rate_target.metric != "bpp" or (source.icc_profile is None and source.exif is None):
        return rate_target
    extra = C.SECTION_FRAME_BYTES + len(metadata_payload({
        key: value for key, value in zip(C.META_KEYS, (source.icc_profile, source.exif)) if value is not None}))
    value = rate_target.value - extra * 8 / num_pixels
    if value <= 0:
        msg = f"the image's ICC profile and EXIF alone take {extra} bytes; --strip leaves them out"
        raise RateTargetError(msg)
    return replace(rate_target, value=value)


class RateTargetError(ValueError):
    """The size asked for is below the smallest file this image can have (header, weights, tables)."""


def _fit_under_cap(model: GridINR, weight_steps: np.ndarray | None, data: bytes, cap: int, **metadata) -> bytes:
    """The file, or a smaller state's file, of at most ``cap`` bytes.

    Training keeps the best state under the cap, and the weight-step search only removes bits, so this
    rarely acts. When it does: the smaller of the files with the chosen and with the training-time int8
    weight steps, then the finest levels' latents set to zero, one level at a time (a constant level costs
    almost nothing), until it fits.
    """

    def smallest() -> bytes:
        files = [assemble_file(model, steps, **metadata).data for steps in (weight_steps, None)]
        return min(files, key=len)

    if len(data) <= cap:
        return data
    data = smallest()
    with torch.no_grad():
        for level in reversed(model.layout.levels):
            if len(data) <= cap:
                break
            model.latents[level.rows_slice] = 0.0
            data = smallest()
    if len(data) > cap:
        msg = f"cannot fit this image in {cap} bytes: its smallest file is {len(data)} bytes"
        raise RateTargetError(msg)
    return data
