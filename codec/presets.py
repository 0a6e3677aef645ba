"""Encoder presets and the ``--quality`` knob.

A preset fixes the architecture and the training schedule; ``quality`` (1 = smallest file .. 8 = best
picture) picks the hash-table size and the rate weight λ. λ multiplies the rate in bits per pixel, so its
meaning does not depend on the table size or the image size: loss = MSE (on [0, 1] RGB) + λ · bpp.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

__all__ = ["PRESETS", "QUALITIES", "EncoderSettings", "settings_for"]


@dataclass(frozen=True)
class EncoderSettings:
    """Everything that decides what the encoder does, besides the image."""

    num_levels: int = 16
    min_res: int = 16
    max_res: int = 512
    log2_hashmap_size: int = 14
    latent_dim: int = 1
    feat_dim: int = 1
    mlp_width: int = 16
    mlp_depth: int = 2
    num_groups: int = 1
    steps: int = 1000
    anneal: float = 0.95
    """Fraction of the steps with soft (Gumbel-annealed) rounding; hard straight-through rounding after."""
    noise: float = 0.0
    """Fraction of the steps (taken from the start of the soft phase) with additive uniform noise instead."""
    lmbda: float = 1e-3
    lr_latents: float = 2e-2
    lr_network: float = 5e-3
    lr_prior: float = 1e-3
    batch_pixels: int = 1 << 17
    """Pixels per training step: larger images are split into fixed random batches, cycled step by step."""
    eval_every: int = 25
    """Steps between hard-quantized rate-distortion evaluations that pick the state to keep."""


# quality -> (log2_hashmap_size, λ)
QUALITIES: dict[int, tuple[int, float]] = {
    1: (12, 1.6e-3),
    2: (13, 8e-4),
    3: (14, 4e-4),
    4: (15, 2e-4),
    5: (16, 1e-4),
    6: (17, 5e-5),
    7: (18, 2.5e-5),
    8: (19, 1.2e-5),
}
DEFAULT_QUALITY = 3

PRESETS: dict[str, EncoderSettings] = {
    # seconds on a small image, about a minute on a Kodak photo on 2 CPU cores: demo and tests
    "fast": EncoderSettings(num_levels=12, steps=300, eval_every=20),
    # what a user should pick
    "default": EncoderSettings(num_levels=16, steps=1000),
    # the paper's Kodak settings (appendix): MLP 16 x 2, D = F = 1, 60,000 full-image steps
    "paper": EncoderSettings(num_levels=16, steps=60000, eval_every=500),
}


def settings_for(
    preset: str = "default", quality: int | None = None, steps: int | None = None
) -> EncoderSettings:
    """Resolve a preset name, a quality level and an optional step override into settings."""
    if preset not in PRESETS:
        msg = f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
        raise ValueError(msg)
    quality = DEFAULT_QUALITY if quality is None else quality
    if quality not in QUALITIES:
        msg = f"quality must be an integer in {min(QUALITIES)}..{max(QUALITIES)}, got {quality}"
        raise ValueError(msg)
    log2_size, lmbda = QUALITIES[quality]
    settings = replace(PRESETS[preset], log2_hashmap_size=log2_size, lmbda=lmbda)
    if steps is not None:
        if steps < 1:
            msg = f"steps must be >= 1, got {steps}"
            raise ValueError(msg)
        settings = replace(settings, steps=steps)
    return settings
