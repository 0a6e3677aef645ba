"""Encoder presets and the ``--quality`` knob.

A preset fixes the architecture and the training schedule; ``quality`` (1 = smallest file .. 8 = best
picture) picks the hash-table size and the rate weight λ, and for most presets the grid extent and the MLP
width. λ multiplies the rate in bits per pixel, so its meaning does not depend on the table size or the
image size: loss = MSE (on [0, 1] RGB) + λ · bpp.

Presets and quality levels are records (:class:`Preset`, :class:`Quality`); the command line builds its
choices and help from them. This module imports no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from shc.format.constants import INTERPOLATION_BILINEAR, INTERPOLATION_BSPLINE, MAX_TOTAL_LATENTS
from shc.format.grid import choose_level_cells, level_num_rows

__all__ = [
    "DEFAULT_QUALITY", "PRESETS", "QUALITIES", "EncoderSettings", "Preset", "Quality", "preset_named",
    "level_cells", "pixels_per_step", "quality_level", "settings_for", "settings_for_image", "steps_for_image",
]


@dataclass(frozen=True)
class EncoderSettings:
    """Everything that decides what the encoder does, besides the image."""

    num_levels: int = 12
    min_res: int = 16
    max_res_scale: float = 0.5
    """The finest level has ``max_res_scale`` x the long image side in cells (coarser grids, fewer latents)."""
    square_levels: bool = False
    """Give both image axes the long side's cell count, as the paper's [0, 1]^2 grids do (more vertices along
    the short side of a non-square photo); False: cells in proportion to each side."""
    log2_hashmap_size: int = 15
    latent_dim: int = 1
    feat_dim: int = 1
    mlp_width: int = 16
    mlp_depth: int = 2
    context_width: int = 8
    """Hidden units of the context model (SPEC §5a) fitted after training to code the dense levels, kept
    when it makes the file smaller; 0: every level coded with its histogram table, as in version 5.
    (Trained jointly with the latents from the first step, it made files larger: results/context.)"""
    context_fit_steps: int = 400
    """Adam steps that fit the context model to the trained latents (about 1 s for a Kodak photo)."""
    num_groups: int = 12
    """Probability-model groups of levels; one per level fits each level's statistics, for a lower RD cost
    than one shared model (results/experiments.md)."""
    steps: int = 4000
    noise: float = 0.5
    """Fraction of the steps (at the start) trained with additive uniform noise instead of rounding."""
    anneal: float = 0.95
    """Steps up to this fraction use soft (Gumbel-annealed) rounding after the noise phase; then hard rounding."""
    proxy: str = "gumbel"
    """How latents are rounded while they learn: ``"gumbel"``: uniform noise (``noise``), then Gumbel
    annealing up to ``anneal``; ``"softround"``: the anchors' ``s_T(s_T(y) + u)`` from the first step to
    ``anneal``, the softness ``T`` going linearly from ``softness_start`` to ``softness_end``."""
    softness_start: float = 0.35
    softness_end: float = 0.08
    latent_eps: float = 1e-8
    """Adam's ε for the latents (Instant-NGP: 1e-15 speeds up sparse, weak table gradients)."""
    freeze_latents_final: bool = False
    """In the hard-rounded phase after ``anneal``, only the networks learn (the anchors' last phase): the
    latents stay the integers they are."""
    lmbda: float = 8e-3
    lr_latents: float = 2e-2
    lr_network: float = 1e-2
    """Learning rate of the latent decoder, and of the MLP unless ``lr_mlp`` is set."""
    lr_mlp: float | None = None
    """Learning rate of the synthesis MLP when it differs from the latent decoder's (the paper: 1e-3)."""
    lr_prior: float = 1e-2
    lr_final: float = 0.02
    """Learning rates decay (cosine) to this fraction of their start by the last step."""
    batch_pixels: int = 1 << 14
    """Pixels per training step: a fresh random subset of columns x rows of larger images at each step."""
    prefix_fraction: float = 1 / 32
    """Share of each batch's pixels rendered from a random prefix of the levels (the coarser 1 .. L-1, the
    others' latents taken as 0, as a level-of-detail preview decodes them: SPEC §6, ``shc decode --levels``),
    so that the network learns to render from any prefix of the file; 0: full renders only. 1/32 costs
    +0.30 % BD-rate on eight Kodak images (q1-q5) and lifts prefix renders by 0.5-1.3 dB (3 levels: up to
    4.9 dB); 1/8 cost +3.3 % (results/lod/)."""
    subpixels: int = 1
    """Above 1, training sees each pixel over its area rather than at its centre (1), so that the field
    renders between pixel centres (``--scale`` > 1) as the photo would look there; how: ``subpixel_mode``."""
    subpixel_mode: str = "jitter"
    """``"jitter"`` (``subpixels`` odd): every batch column and row at one of ``subpixels`` random sub-pixel
    positions; ``"box"``: the field rendered at ``subpixels x subpixels`` positions per pixel and their mean
    compared with the pixel (a box-filtered pre-image; the batch then holds 1/subpixels^2 as many pixels)."""
    eval_every: int = 100
    """Steps between hard-quantized rate-distortion evaluations that pick the state to keep."""
    score_pixels: int = 1 << 20
    """Those evaluations render at most this many pixels: a fixed, evenly spread subset of the columns and
    rows of larger images (the bits are always the real file's; the encoder's final report is exact). A
    million evenly spread pixels estimate the PSNR to ~0.01 dB; more only makes large encodes slower."""
    entropy_coding: bool = True
    """False gives the Instant-NGP-style baseline: float16 latents stored raw, no quantization or rate term."""
    interpolation: int = INTERPOLATION_BSPLINE
    """How each level is blended between vertices (SPEC §7): the cubic B-spline (RD: results/ablation-v4),
    or bilinear as in the paper (INTERPOLATION_BILINEAR)."""


@dataclass(frozen=True)
class Quality:
    """One step of the ``--quality`` knob: what it sets in the preset's settings."""

    level: int
    """The ``--quality`` value: 1 (smallest file) .. 8 (best picture)."""
    log2_hashmap_size: int
    """Rows per level's hash table (log2)."""
    lmbda: float
    """Rate weight λ of the loss."""
    max_res_scale: float
    """Grid extent: the finest level's cells per long image side, as a fraction of it."""
    mlp_width: int
    """Hidden width of the synthesis MLP."""
    kodak_bpp: float
    """Typical result, mean over the eight Kodak images of results/kodak-cpu (default preset): where rate
    control (``--target-bpp``, ``--target-size``) starts before it measures the image (even levels:
    geometric mean of their neighbours, q8 extrapolated)."""
    kodak_psnr_db: float
    """The same for ``--target-psnr``: the mean PSNR."""


# λ halves per level, so the bits grow roughly geometrically. Tables: hashing the fine levels pays at low
# and middle rates (a dense table there costs time for no gain), but at the top rates the full-resolution
# level collides in a 2^17 table; 2^19 rows keep it dense for photos up to about half a megapixel. MLP: at
# q1 the weights are a large share of the file, so a narrower MLP lowers the RD cost (too narrow raises
# it again). The measurements behind these choices: results/experiments.md and results/kodak-cpu/README.md.
QUALITIES: tuple[Quality, ...] = (
    Quality(level=1, log2_hashmap_size=13, lmbda=3.2e-2, max_res_scale=0.5, mlp_width=12,
            kodak_bpp=0.077, kodak_psnr_db=24.16),
    Quality(level=2, log2_hashmap_size=14, lmbda=1.6e-2, max_res_scale=0.5, mlp_width=16,
            kodak_bpp=0.131, kodak_psnr_db=25.46),
    Quality(level=3, log2_hashmap_size=15, lmbda=8e-3, max_res_scale=0.5, mlp_width=16,
            kodak_bpp=0.223, kodak_psnr_db=26.76),
    Quality(level=4, log2_hashmap_size=16, lmbda=4e-3, max_res_scale=0.5, mlp_width=16,
            kodak_bpp=0.375, kodak_psnr_db=28.34),
    Quality(level=5, log2_hashmap_size=16, lmbda=2e-3, max_res_scale=0.75, mlp_width=16,
            kodak_bpp=0.632, kodak_psnr_db=29.92),
    Quality(level=6, log2_hashmap_size=17, lmbda=1e-3, max_res_scale=0.75, mlp_width=16,
            kodak_bpp=0.956, kodak_psnr_db=32.11),
    Quality(level=7, log2_hashmap_size=19, lmbda=5e-4, max_res_scale=1.0, mlp_width=16,
            kodak_bpp=1.446, kodak_psnr_db=34.3),
    Quality(level=8, log2_hashmap_size=19, lmbda=2.5e-4, max_res_scale=1.0, mlp_width=16,
            kodak_bpp=2.187, kodak_psnr_db=36.49),
)
DEFAULT_QUALITY = 3


@dataclass(frozen=True)
class Preset:
    """A named architecture and training schedule."""

    name: str
    """What ``--preset`` takes."""
    summary: str
    """One line for the command-line help."""
    settings: EncoderSettings
    """The settings before the quality level is applied."""
    quality_sets_architecture: bool = True
    """Whether the quality level also picks the grid extent (``max_res_scale``) and the MLP width; when
    False it sets only the table size and λ, and the preset keeps its own grid extent and MLP."""
    quality_sets_table: bool = True
    """Whether the quality level picks the hash-table size; when False (and ``quality_sets_architecture``
    False) the quality sets λ only and the preset's grid is fixed, as in the paper's configuration."""


# Encode times of each preset on a Kodak photo: results/presets-kodim23/README.md.
PRESETS: tuple[Preset, ...] = (
    Preset("fast", "tens of seconds per photo on a CPU, for demos and tests",
           EncoderSettings(steps=800, eval_every=40)),
    Preset("default", "minutes per photo on a CPU, smaller files (the one to pick)", EncoderSettings()),
    # The authors' public Kodak configuration (results/paper/README.md says where shc differs): 24 levels of
    # 2^11 rows (coarse levels dense, the rest hashed), square grids of 16 .. 512 cells per side (512 is 2/3
    # of Kodak's long side), D = F = 1, MLP 16 x 2, bilinear, Adam with latents 0.01, MLP 1e-3, latent decoder
    # 0.01, probability model 1e-4, annealing over 0.95 of 60,000 full-image steps, no level-of-detail training.
    # The quality sets λ only.
    Preset("paper", "the paper's Kodak configuration, 60,000 steps on the whole image (hours on a CPU: use a GPU)",
           EncoderSettings(num_levels=24, num_groups=24, log2_hashmap_size=11, min_res=16, max_res_scale=2 / 3,
                           square_levels=True, mlp_width=16, mlp_depth=2, steps=60000, eval_every=500,
                           lr_latents=1e-2, lr_network=1e-2, lr_mlp=1e-3, lr_prior=1e-4,
                           batch_pixels=1 << 22, interpolation=INTERPOLATION_BILINEAR, prefix_fraction=0.0),
           quality_sets_architecture=False, quality_sets_table=False),
)


def preset_named(name: str) -> Preset:
    """The preset called ``name``; ValueError naming the choices if there is none."""
    choices = ", ".join(preset.name for preset in PRESETS)
    return _find([p for p in PRESETS if p.name == name], f"unknown preset {name!r}; choose one of {choices}")


def quality_level(level: float) -> Quality:
    """The quality record of ``level``; ValueError giving the range if there is none.

    A fractional level (``--quality 3.4``) lies between two records: λ is interpolated geometrically (λ
    halves per level, so bits grow smoothly with the level), and the table size, grid extent and MLP width
    are those of the nearest level (they cannot be interpolated). The record's ``level`` is the nearest one.
    """
    low, high = QUALITIES[0].level, QUALITIES[-1].level
    if not (isinstance(level, (int, float)) and math.isfinite(level) and low <= level <= high):
        msg = f"quality must be a number in {low}..{high}, got {level}"
        raise ValueError(msg)
    below = QUALITIES[math.floor(level) - low]
    if level == below.level:
        return below
    above = QUALITIES[math.floor(level) - low + 1]
    fraction = level - below.level
    nearest = above if fraction >= 0.5 else below
    lmbda = below.lmbda * (above.lmbda / below.lmbda) ** fraction
    return replace(nearest, lmbda=lmbda)


def quality_for(metric: str, value: float) -> float:
    """The fractional quality level whose typical Kodak result (``Quality.kodak_bpp`` or
    ``Quality.kodak_psnr_db``) equals ``value``: where rate control starts before it measures the image
    itself. Clamped to the knob's range; bits are interpolated in log scale."""
    points = [(q.level, math.log(q.kodak_bpp) if metric == "bpp" else q.kodak_psnr_db) for q in QUALITIES]
    x = math.log(value) if metric == "bpp" else value
    if x <= points[0][1]:
        return float(points[0][0])
    for (level0, y0), (level1, y1) in zip(points, points[1:]):
        if x <= y1:
            return level0 + (x - y0) / (y1 - y0) * (level1 - level0)
    return float(points[-1][0])


def _find(matches: list, error: str):
    if not matches:
        raise ValueError(error)
    return matches[0]


def settings_for(
    preset: str = "default", quality: float | None = None, steps: int | None = None, entropy_coding: bool = True,
    architecture: float | None = None,
) -> EncoderSettings:
    """Resolve a preset name, a (possibly fractional) quality level, an optional step override and the
    latent coding into settings; ``architecture``: take the table size, grid extent and MLP width from this
    level instead of ``quality``'s (rate control gives a PSNR target the capacity of the next level up).

    Without entropy coding (the Instant-NGP-style baseline) ``quality`` still picks the grid (table size,
    finest level) and the MLP width; λ has nothing to weigh.
    """
    chosen = preset_named(preset)
    knob = quality_level(DEFAULT_QUALITY if quality is None else quality)
    if architecture is not None:
        knob = replace(quality_level(architecture), lmbda=knob.lmbda)
    settings = replace(chosen.settings, lmbda=knob.lmbda)
    if chosen.quality_sets_table:
        settings = replace(settings, log2_hashmap_size=knob.log2_hashmap_size)
    if chosen.quality_sets_architecture:
        settings = replace(settings, max_res_scale=knob.max_res_scale, mlp_width=knob.mlp_width)
    if steps is not None:
        if steps < 1:
            msg = f"steps must be >= 1, got {steps}"
            raise ValueError(msg)
        settings = replace(settings, steps=steps)
    return replace(settings, entropy_coding=entropy_coding)


KODAK_PIXELS = 768 * 512
"""The image size the quality levels were tuned at (results/kodak-cpu)."""
MAX_SCALED_TABLE_LOG2 = 23
"""The largest table scaling picks: the paper's Pearl (23466 x 20000) configuration."""
WIDE_MLP_PIXELS, WIDE_MLP_WIDTH = 2_000_000, 48
"""From about UVG-F's 1920 x 1080 up, the paper's appendix widens the MLP to 48."""


def settings_for_image(settings: EncoderSettings, width: int, height: int) -> EncoderSettings:
    """``settings`` for an image of ``width x height``, so that a quality level means the same bpp and PSNR at
    any size: above Kodak's size the hash table grows with the pixel count (one doubling per doubling of
    pixels, up to 2^23 rows, and below the format's 2^24 latents in all), and from 2 megapixels the MLP is
    48 wide (the paper's appendix). Images up to Kodak's size keep the settings as they are. Measured on
    the large photos: results/large-cpu."""
    pixels = width * height
    if pixels <= KODAK_PIXELS:
        return settings
    extra = max(0, round(math.log2(pixels / KODAK_PIXELS)))
    table = max(settings.log2_hashmap_size, min(MAX_SCALED_TABLE_LOG2, settings.log2_hashmap_size + extra))
    while table > settings.log2_hashmap_size and _grid_values(settings, width, height, table) > MAX_TOTAL_LATENTS:
        table -= 1  # the format bounds the latents (and the decoder's feature tables) to 2^24 values
    mlp_width = max(settings.mlp_width, WIDE_MLP_WIDTH) if pixels >= WIDE_MLP_PIXELS else settings.mlp_width
    return replace(settings, log2_hashmap_size=table, mlp_width=mlp_width)


PASS_FLOOR_DIVISOR = 16
"""Above Kodak's size a preset's passes per pixel (steps x pixels per step / pixels) may fall to this fraction
of what it gives a Kodak photo, and no lower (until ``MAX_STEPS_FACTOR``): :func:`steps_for_image`."""
MAX_STEPS_FACTOR = 4
"""The step budget of :func:`steps_for_image` stops growing at this many times the preset's own steps."""


def pixels_per_step(settings: EncoderSettings, num_pixels: int) -> int:
    """Pixels one training step of an image of ``num_pixels`` sees: the batch (``box`` sub-pixel training
    renders ``subpixels^2`` samples a pixel, so its batch holds that many times fewer pixels), or the whole
    image when it is smaller."""
    box = settings.subpixels if settings.subpixel_mode == "box" else 1
    return min(num_pixels, max(1, settings.batch_pixels // (box * box)))


def steps_for_image(settings: EncoderSettings, width: int, height: int) -> int:
    """The training steps for an image of ``width x height`` when none are asked for (no ``--steps``,
    ``--minutes``): the preset's own up to 16 x Kodak's pixels (6.3 MP), so that the passes per pixel
    never fall below 1/16 (``PASS_FLOOR_DIVISOR``) of what the preset gives a Kodak photo, then in
    proportion to the pixels, up to 4 x (``MAX_STEPS_FACTOR``) the preset's steps.

    The numbers, for the default preset (4,000 steps of 16,384 pixels: 167 passes at Kodak's size): a floor
    of 10.4 passes, reached at 6.3 MP; a 24 MP photo (6000 x 4000) gets 15,259 steps instead of 4,000 (2.7
    passes, where it stalled at 27.4 dB; 16,000 steps gave 32.5 dB: issue 31), and from 25 MP the cap holds
    at 16,000 steps (50 MP: 5.2 passes, 200 MP: 1.3). The cap is what keeps the default within about 15
    minutes at 24 MP on the project's 2-core CPU: at the 25-40 ms a 16k-pixel step has been seen to cost
    there, 16,000 steps are 7-11 minutes, the rest is scoring, the file and its decode. fast: 2.1 passes,
    800 steps up to 6.3 MP, at most 3,200. paper (whole Kodak image a step, 4 M-pixel batches): 3,750
    passes, so 60,000 steps up to 67 MP. These figures are to be measured (issue 31: ``results/large-v2``);
    the divisor and the cap are the two knobs. Images up to Kodak's size, and far beyond, keep the preset's
    steps exactly."""
    pixels = width * height
    floor = settings.steps * pixels_per_step(settings, KODAK_PIXELS) / KODAK_PIXELS / PASS_FLOOR_DIVISOR
    needed = math.ceil(floor * pixels / pixels_per_step(settings, pixels) - 1e-9)
    return min(max(settings.steps, needed), MAX_STEPS_FACTOR * settings.steps)


def level_cells(settings: EncoderSettings, width: int, height: int) -> list[tuple[int, int]]:
    """Each level's cells for an image: the preset's levels, the finest capped at the image's own resolution."""
    max_res = max(2, round(settings.max_res_scale * max(width, height)))
    cells = choose_level_cells(width, height, settings.num_levels, max(1, min(settings.min_res, max_res)), max_res)
    if settings.square_levels:
        cells = [(max(nx, ny), max(nx, ny)) for nx, ny in cells]
    return cells


def _grid_values(settings: EncoderSettings, width: int, height: int, log2_hashmap_size: int) -> int:
    """Latents or feature values (whichever is more) of the grid these settings give an image (SPEC §2, §4)."""
    rows = sum(level_num_rows(nx, ny, log2_hashmap_size)[0] for nx, ny in level_cells(settings, width, height))
    return rows * max(settings.latent_dim, settings.feat_dim)
