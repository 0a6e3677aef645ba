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

    num_levels: int = 12
    min_res: int = 16
    max_res_scale: float = 0.5
    """The finest level has ``max_res_scale`` x the long image side in cells (coarser grids, fewer latents)."""
    log2_hashmap_size: int = 15
    latent_dim: int = 1
    feat_dim: int = 1
    mlp_width: int = 16
    mlp_depth: int = 2
    num_groups: int = 12
    """Probability-model groups of levels; one per level gave a 7 % lower RD cost than one shared (kodim23, q3)."""
    steps: int = 4000
    noise: float = 0.5
    """Fraction of the steps (at the start) trained with additive uniform noise instead of rounding."""
    anneal: float = 0.95
    """Steps up to this fraction use soft (Gumbel-annealed) rounding after the noise phase; then hard rounding."""
    lmbda: float = 8e-3
    lr_latents: float = 2e-2
    lr_network: float = 1e-2
    lr_prior: float = 1e-2
    lr_final: float = 0.02
    """Learning rates decay (cosine) to this fraction of their start by the last step."""
    batch_pixels: int = 1 << 14
    """Pixels per training step: a fresh random subset of columns x rows of larger images at each step."""
    eval_every: int = 100
    """Steps between hard-quantized rate-distortion evaluations that pick the state to keep."""
    entropy_coding: bool = True
    """False gives the Instant-NGP-style baseline: float16 latents stored raw, no quantization or rate term."""


# quality -> (log2_hashmap_size, λ, max_res_scale, mlp_width): λ halves per step, so bits roughly grow
# geometrically. Tables: hashing the fine levels pays at low and middle rates (kodim23 q3 dense 2^17: same
# RD cost, 40 % slower; q5 dense 2^18: +2.6 % cost), but at the top rates the full-resolution level
# collides 3:1 in a 2^17 table; 2^19 keeps it dense for photos up to ~0.5 MP (kodim23 q7: RD cost -7.5 %,
# ~13 % fewer bits). MLP: at q1 the weights are ~20 % of the file; width 12 lowers the RD cost 1.6 % on
# kodim23 and 2.6 % on kodim19 (width 8: +1 %).
QUALITIES: dict[int, tuple[int, float, float, int]] = {
    1: (13, 3.2e-2, 0.5, 12),
    2: (14, 1.6e-2, 0.5, 16),
    3: (15, 8e-3, 0.5, 16),
    4: (16, 4e-3, 0.5, 16),
    5: (16, 2e-3, 0.75, 16),
    6: (17, 1e-3, 0.75, 16),
    7: (19, 5e-4, 1.0, 16),
    8: (19, 2.5e-4, 1.0, 16),
}
DEFAULT_QUALITY = 3

PRESETS: dict[str, EncoderSettings] = {
    # a few seconds on a small image, ~20 s on a Kodak photo on 2 CPU cores: demo and tests
    "fast": EncoderSettings(steps=800, eval_every=40),
    # what a user should pick: ~95 s for a Kodak photo on 2 CPU cores
    "default": EncoderSettings(),
    # the paper's Kodak settings (appendix): 16 levels, MLP 16 x 2, D = F = 1, 60,000 full-image steps
    "paper": EncoderSettings(num_levels=16, num_groups=16, max_res_scale=1.0, steps=60000, eval_every=500,
                             batch_pixels=1 << 22),
}


def settings_for(
    preset: str = "default", quality: int | None = None, steps: int | None = None, entropy_coding: bool = True
) -> EncoderSettings:
    """Resolve a preset name, a quality level, an optional step override and the latent coding into settings.

    Without entropy coding (the Instant-NGP-style baseline) ``quality`` still picks the grid (table size,
    finest level) and the MLP width; λ has nothing to weigh.
    """
    if preset not in PRESETS:
        msg = f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}"
        raise ValueError(msg)
    quality = DEFAULT_QUALITY if quality is None else quality
    if quality not in QUALITIES:
        msg = f"quality must be an integer in {min(QUALITIES)}..{max(QUALITIES)}, got {quality}"
        raise ValueError(msg)
    log2_size, lmbda, max_res_scale, mlp_width = QUALITIES[quality]
    settings = replace(PRESETS[preset], log2_hashmap_size=log2_size, lmbda=lmbda)
    if preset != "paper":  # the paper preset keeps the paper's grid extent and MLP
        settings = replace(settings, max_res_scale=max_res_scale, mlp_width=mlp_width)
    if steps is not None:
        if steps < 1:
            msg = f"steps must be >= 1, got {steps}"
            raise ValueError(msg)
        settings = replace(settings, steps=steps)
    return replace(settings, entropy_coding=entropy_coding)
