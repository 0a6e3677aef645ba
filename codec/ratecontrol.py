"""Rate control: one encode steers λ toward a target size, bpp or PSNR while it trains.

Why one run is enough: at a fixed λ the file's size settles within the first ~25 % of the steps, while
the PSNR keeps rising until annealing ends (results/ratecontrol/README.md shows both curves). Every
``eval_every`` steps the trainer scores the real file (its exact size and decoded 8-bit MSE); the
controller moves log λ in proportion to the log-error of the bits, or to the error of the PSNR it
predicts for the end of the run, and the state kept is the best one that meets the target rather than
the lowest RD cost. A size target is a hard cap: the encoder never writes a larger file
(:func:`shc.codec.encoder.encode_image` falls back to dropping the finest levels' latents).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from shc.codec.presets import QUALITIES, EncoderSettings, quality_for, settings_for

__all__ = ["JpegProbe", "LambdaController", "RateTarget", "expected_psnr_gain", "start_settings"]

BITS_LAMBDA_EXPONENT = 0.8
"""bpp ∝ λ^-0.8: λ halves per quality level and the Kodak bits grow ~1.7x per level."""
DB_PER_LAMBDA_DOUBLING = 1.3
"""PSNR gained per halving of λ (Kodak means: 2.6 dB from q1 to q3)."""
BITS_BAND = 0.02
"""A state within ±2 % of a bpp target is on target (the weight-step search then trims < 1 %)."""
PSNR_BAND_DB = 0.05
"""A state at most this far below a PSNR target is on target."""
CAP_MARGIN = 0.002
"""A size cap is steered toward 0.2 % below the cap: late states hold their size to about 0.1 %, and
the kept state must fit under it."""
WEIGHT_TRIM = 0.01
"""The weight-step search after training removes about 1 % of a Kodak file's bits (results/ratecontrol):
a bpp target is steered that much above, so that the written file lands on it."""
GAIN = 1.0
"""Fraction of the measured error corrected at each evaluation (clamped to a factor 2 of λ): within one
run the bits answer a change of λ late and only partly, so a smaller gain falls short of the target."""
CONTROL_WINDOW = (0.1, 0.85)
"""Fractions of the run during which λ moves: before, the bits are far from settled; after, the learning
rates have decayed so far that λ no longer changes the state."""
KEEP_FROM = {"bpp": 0.5, "psnr": 0.75}
"""States scored before this fraction of the run are kept only if no later one exists: an early state
can meet a bits target by chance, at a far lower PSNR (before 0.5 the latents train with additive
noise), and a state in the middle of annealing can meet a PSNR target with far more bits than the
settled states at the end."""

# PSNR still to come, in dB, as a function of the fraction of the run done: mean of kodim13 and kodim23
# at quality 3 of the default preset (results/ratecontrol/README.md); the jump around 0.5-0.6 is the
# start of annealed rounding. Presets share the schedule fractions (noise 0.5, anneal 0.95).
_PSNR_GAIN_CURVE = ((0.0, 2.5), (0.25, 2.07), (0.375, 1.69), (0.5, 1.24), (0.55, 0.63), (0.625, 0.2),
                    (0.75, 0.02), (1.0, 0.0))


def expected_psnr_gain(progress: float) -> float:
    """dB a state at ``progress`` (0..1 of the steps) is expected to gain by the end of the run."""
    xs, ys = zip(*_PSNR_GAIN_CURVE)
    return float(np.interp(progress, xs, ys))


@dataclass(frozen=True)
class RateTarget:
    """What the file should meet: ``bpp`` (``hard_cap``: never more, from ``--target-size``) or ``psnr`` dB."""

    metric: str
    value: float
    hard_cap: bool = False

    def __post_init__(self) -> None:
        if self.metric not in ("bpp", "psnr"):
            msg = f"rate target metric must be 'bpp' or 'psnr', got {self.metric!r}"
            raise ValueError(msg)
        if not (math.isfinite(self.value) and self.value > 0):
            msg = f"rate target must be a positive number, got {self.value}"
            raise ValueError(msg)

    @classmethod
    def size(cls, num_bytes: int, num_pixels: int) -> RateTarget:
        """At most ``num_bytes`` bytes for an image of ``num_pixels`` pixels."""
        return cls("bpp", num_bytes * 8 / num_pixels, hard_cap=True)

    def max_bytes(self, num_pixels: int) -> int:
        """The cap in bytes of a hard-cap target for an image of ``num_pixels`` pixels."""
        return math.floor(self.value * num_pixels / 8 + 1e-6)

    def start_quality(self, probe: JpegProbe | None = None) -> float:
        """The fractional quality whose typical Kodak result is this target (the architecture and the first
        λ), shifted by how hard this image is compared with Kodak when a ``probe`` of it is given."""
        if probe is None:
            return quality_for(self.metric, self.value)
        if self.metric == "bpp":
            return quality_for("bpp", self.value * KODAK_JPEG50_BPP / probe.bpp)
        return quality_for("psnr", self.value - (probe.psnr_db - KODAK_JPEG50_PSNR_DB))


    def architecture_quality(self, start: float) -> float:
        """The level whose architecture (table, grid extent, MLP) to train at ``start``: the next level up
        for a PSNR target, whose only lever is capacity once λ is small (kodim13 stopped 0.8 dB short of
        29 dB with λ at its floor on the nearer level's grid), the nearest level for a bits target."""
        return float(min(QUALITY_RANGE[1], math.ceil(start))) if self.metric == "psnr" else start


QUALITY_RANGE = (QUALITIES[0].level, QUALITIES[-1].level)
KODAK_JPEG50_BPP = 0.985
KODAK_JPEG50_PSNR_DB = 31.49
"""Mean bpp and PSNR of Pillow's JPEG at quality 50 (4:2:0, libjpeg-turbo 3.2) on the eight Kodak images
of ``Quality.kodak_bpp``. On those images shc's bits at a given quality are 0.13-0.27x JPEG's and its
PSNR is JPEG's minus 3.7-5.4 dB, while both spread far more from image to image (0.09-0.39 bpp,
22.8-30.5 dB at quality 3): a 10-ms JPEG encode says how hard an image is."""
PROBE_MAX_SIDE = 2048
"""Larger images are probed on a centred crop of at most this many pixels a side."""


def start_settings(
    target: RateTarget, pixels: np.ndarray, preset: str, steps: int | None, entropy_coding: bool = True
) -> tuple[EncoderSettings, float]:
    """The settings an encode aiming at ``target`` without an explicit quality starts from (the
    architecture, and the first λ), and the fractional quality they stand for: from a JPEG probe of
    ``pixels`` (:meth:`RateTarget.start_quality`, :meth:`RateTarget.architecture_quality`)."""
    quality = target.start_quality(JpegProbe.of(pixels))
    architecture = target.architecture_quality(quality)
    return settings_for(preset, quality, steps, entropy_coding, architecture), quality


@dataclass(frozen=True)
class JpegProbe:
    """How a quick JPEG (quality 50) does on the image: where rate control's first guess comes from."""

    bpp: float
    psnr_db: float

    @classmethod
    def of(cls, pixels: np.ndarray) -> JpegProbe:
        """Probe ``(H, W, 3 | 4)`` uint8 pixels (alpha ignored)."""
        import io

        from PIL import Image

        height, width = pixels.shape[:2]
        top, left = max(0, (height - PROBE_MAX_SIDE) // 2), max(0, (width - PROBE_MAX_SIDE) // 2)
        crop = np.ascontiguousarray(pixels[top : top + PROBE_MAX_SIDE, left : left + PROBE_MAX_SIDE, :3])
        buffer = io.BytesIO()
        Image.fromarray(crop, "RGB").save(buffer, "JPEG", quality=50)
        with Image.open(buffer) as decoded:
            approx = np.asarray(decoded.convert("RGB"), dtype=np.float64)
        mse = float(np.mean((approx - crop) ** 2))
        psnr = 10 * math.log10(255.0**2 / max(mse, 1e-6))
        return cls(bpp=max(len(buffer.getvalue()) * 8 / (crop.shape[0] * crop.shape[1]), 1e-3), psnr_db=psnr)


class LambdaController:
    """Steers λ from hard scores (objects with ``step``, ``bpp`` and ``psnr_db``) toward a :class:`RateTarget`."""

    def __init__(self, target: RateTarget, lmbda: float, steps: int) -> None:
        self.target = target
        self.steps = steps
        self.log_lmbda = math.log(lmbda)
        self.aim = target.value * (1 - CAP_MARGIN) if target.hard_cap else target.value * (1 + WEIGHT_TRIM)

    @property
    def lmbda(self) -> float:
        return math.exp(self.log_lmbda)

    def observe(self, scored) -> None:
        """Move λ after an evaluation: more bits (or more PSNR) than the target raises it."""
        progress = scored.step / self.steps
        if not (CONTROL_WINDOW[0] <= progress <= CONTROL_WINDOW[1]):
            return
        if self.target.metric == "bpp":
            error = math.log(scored.bpp / self.aim) / BITS_LAMBDA_EXPONENT
        else:
            predicted = scored.psnr_db + expected_psnr_gain(progress)
            error = (predicted - self.target.value) * math.log(2) / DB_PER_LAMBDA_DOUBLING
        step = max(-math.log(2), min(math.log(2), GAIN * error))
        self.log_lmbda = min(0.0, max(math.log(1e-6), self.log_lmbda + step))

    def _rank(self, scored) -> tuple[int, int, float]:
        """Smaller is better: (early, 0, ...) for states that meet the target, (early, 1, ...) for the rest."""
        target = self.target
        early = int(scored.step < KEEP_FROM[target.metric] * self.steps)
        if target.metric == "psnr":
            if scored.psnr_db >= target.value - PSNR_BAND_DB:
                return (early, 0, scored.bpp)  # on target: fewest bits
            return (early, 1, -scored.psnr_db)  # below: closest to the target
        if target.hard_cap:
            if scored.bpp <= target.value:
                return (early, 0, -scored.psnr_db)  # under the cap: best picture
            return (early, 1, scored.bpp)  # over: smallest
        miss = abs(math.log(scored.bpp / target.value))
        if miss <= math.log1p(BITS_BAND):
            return (early, 0, -scored.psnr_db)
        return (early, 1, miss)

    def prefer(self, candidate, incumbent) -> bool:
        """Whether ``candidate`` is a better state to keep than ``incumbent`` (``None``: nothing kept yet)."""
        return incumbent is None or self._rank(candidate) < self._rank(incumbent)

    def met(self, scored) -> bool:
        """Whether ``scored`` meets the target."""
        return self._rank(scored)[1] == 0
