"""One photo's encode as ``shc encode`` plans it: the options worked out once (:class:`EncodePlan`), and
:func:`encode_photo`, which carries the plan out in this process (:mod:`shc.cli.encode_cmd`) or on a Ray
worker (:mod:`shc.cli.cluster`) and returns the file's bytes and its report. Both import this module; the
command imports the cluster module only for ``--cluster ray``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from collections.abc import Callable
from typing import Any

from shc.cli.batch import Job
from shc.cli.common import BadInputError
from shc.codec.presets import DEFAULT_QUALITY  # no torch
from shc.format.constants import INTERPOLATION_BILINEAR, INTERPOLATION_BSPLINE
from shc.images import ImageInputError

__all__ = ["INTERPOLATIONS", "INTERPOLATION_NAMES", "MAX_INPUT_BYTES", "EncodePlan", "encode_photo"]

INTERPOLATIONS = {"bspline": INTERPOLATION_BSPLINE, "bilinear": INTERPOLATION_BILINEAR}
"""``--interpolation`` names of the HEAD ``interpolation`` values (also how reports name them)."""
INTERPOLATION_NAMES = {value: name for name, value in INTERPOLATIONS.items()}
MAX_INPUT_BYTES = 1 << 31
"""The largest input file ``shc encode`` reads."""


@dataclasses.dataclass(frozen=True)
class EncodePlan:
    """Everything a photo's encode needs besides the photo and the device, worked out and checked once:
    plain data, so that a Ray worker (:mod:`shc.cli.cluster`) encodes exactly as this process would."""

    preset: str
    quality: float | None
    steps: int | None
    settings: Any  # EncoderSettings; None: the rate target picks the architecture for each image
    interpolation: str | None
    no_entropy: bool
    target: tuple[str, float] | None  # ("size" | "bpp" | "psnr", value): the --target-* option given
    seed: int
    strip: bool
    background: tuple[int, int, int] | None
    max_pixels: int | None
    minutes: float | None = None
    """``--minutes``: the encode's time budget, for which each photo's steps are chosen (``steps`` is then None)."""

    def rate_target(self, pixels: int):
        """The :class:`~shc.codec.ratecontrol.RateTarget` for an image of ``pixels`` pixels, or None."""
        if self.target is None:
            return None
        from shc.codec.ratecontrol import RateTarget

        metric, value = self.target
        return RateTarget.size(value, pixels) if metric == "size" else RateTarget(metric, value)


def encode_photo(job: Job, source, plan: EncodePlan, device: str, threads: int | None = None,
                 progress: Callable[[], Any] | None = None, estimate: bool = True) -> tuple[bytes, dict]:
    """Encode one photo (a path or its bytes) without writing anything: the file's bytes and its report.

    ``estimate``: time a few steps first (:mod:`shc.codec.budget`; always with ``plan.minutes``) for the
    report's ``estimate_seconds``. ``progress()`` makes the bar (a :class:`shc.cli.encode_cmd.Progress`),
    whose ``start(training_plan)`` is called once the steps are known (with ``estimate``). Bad input is a
    :class:`BadInputError`; no torch, a :class:`shc.cli.encoder.MissingEncoderError`."""
    from shc.cli.encoder import encode_image  # without torch: one line naming shc[encode]
    from shc.codec.presets import settings_for_image, steps_for_image
    from shc.images import load_image

    try:
        image = load_image(source, background=plan.background, strip=plan.strip, max_pixels=plan.max_pixels)
    except ImageInputError as error:
        raise BadInputError(str(error)) from None
    height, width = image.pixels.shape[:2]
    rate_target = plan.rate_target(width * height)
    chosen, start_quality = plan.settings, plan.quality
    if chosen is None:  # a rate target without --quality: the architecture fits the target and the image
        from shc.codec.ratecontrol import start_settings

        chosen, start_quality = start_settings(rate_target, image.pixels, plan.preset, plan.steps,
                                               not plan.no_entropy)
        if plan.interpolation is not None:
            chosen = dataclasses.replace(chosen, interpolation=INTERPOLATIONS[plan.interpolation])
    chosen = settings_for_image(chosen, width, height)  # tables and MLP that fit the image's size
    if plan.steps is None and plan.minutes is None:  # the preset's budget, grown for a large image
        chosen = dataclasses.replace(chosen, steps=steps_for_image(chosen, width, height))
    bar = None if progress is None else progress()
    try:
        with contextlib.nullcontext() if bar is None else bar.deferring_interrupts():
            result = encode_image(image, settings=chosen, device=device, seed=plan.seed, progress=bar,
                                  rate_target=rate_target, threads=threads, minutes=plan.minutes,
                                  estimate=estimate, on_plan=None if bar is None else bar.start)
        if bar is not None and bar.interrupted:  # Ctrl-C after the last step: still no output
            raise KeyboardInterrupt
    except ValueError as error:  # a size cap below the smallest file this image can have
        raise BadInputError(f"{job.source}: {error}") from None
    finally:
        if bar is not None:
            bar.close()
    return result.data, _report(job, result, plan.preset, start_quality, result.settings, device, rate_target)


def _finite(value: float | None, digits: int) -> float | None:
    """JSON has no infinity: a lossless decode (PSNR = inf) is reported as null."""
    return round(value, digits) if value is not None and math.isfinite(value) else None


def _report(job: Job, result, preset: str, quality, settings, device: str, rate_target) -> dict:
    from shc.codec.presets import pixels_per_step

    batch = pixels_per_step(settings, result.width * result.height)
    report = {
        "input": job.source,
        "output": job.output,
        "width": result.width,
        "height": result.height,
        "channels": result.channels,
        "preset": preset,
        "quality": DEFAULT_QUALITY if quality is None else round(quality, 2),
        "steps": settings.steps,
        "batch_pixels": batch,
        "passes_per_pixel": round(settings.steps * batch / (result.width * result.height), 3),
        "entropy_coding": settings.entropy_coding,
        "interpolation": INTERPOLATION_NAMES[settings.interpolation],
        "device": device,
        "bytes": result.num_bytes,
        "bpp": round(result.bpp, 5),
        "psnr_db": _finite(result.psnr_db, 3),
        "psnr_alpha_db": _finite(result.psnr_alpha_db, 3),
        "encode_seconds": round(result.encode_seconds, 2),
        "estimate_seconds": None if result.plan is None else round(result.plan.estimate_seconds, 2),
    }
    if result.plan is not None and result.plan.minutes is not None:
        report["minutes"] = result.plan.minutes
    if rate_target is not None:
        report["target"] = {"metric": rate_target.metric, "value": round(rate_target.value, 6),
                            "hard_cap": rate_target.hard_cap}
        report["lambda"] = float(f"{result.final_lmbda:.4g}")
    return report
