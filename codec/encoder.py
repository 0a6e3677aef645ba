"""Encoding an image: settings -> header -> training -> integer tables -> range coding -> bytes.

The encoder ends like the decoder starts: it parses its own bytes with :mod:`shc.format` and renders them
with the normative numpy decoder, so the PSNR it reports is the PSNR a user gets from the file.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from shc.format import constants as C
from shc.format.container import Header, ModelConfig
from shc.format.decoder import decode_bytes
from shc.format.grid import choose_level_cells
from shc.images import load_rgb
from shc.metrics import psnr_db

from shc.codec.model import GridINR, PixelGrid
from shc.codec.presets import EncoderSettings, settings_for
from shc.codec.prior import FactorizedPrior
from shc.codec.tables import assemble_file
from shc.codec.train import HardScore, TrainResult, choose_weight_steps, train

__all__ = ["EncodeResult", "encode_image", "make_header"]


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

    @property
    def num_bytes(self) -> int:
        return len(self.data)

    @property
    def bpp(self) -> float:
        return len(self.data) * 8 / (self.width * self.height)


def make_header(width: int, height: int, settings: EncoderSettings) -> Header:
    """The header for an image: the preset's architecture, levels capped at the image's own resolution."""
    max_res = max(2, round(settings.max_res_scale * max(width, height)))
    min_res = max(1, min(settings.min_res, max_res))
    config = ModelConfig(
        num_levels=settings.num_levels,
        log2_hashmap_size=settings.log2_hashmap_size,
        latent_dim=settings.latent_dim,
        feat_dim=settings.feat_dim,
        mlp_width=settings.mlp_width,
        mlp_depth=settings.mlp_depth,
        num_groups=min(settings.num_groups, settings.num_levels),
        interpolation=settings.interpolation,
    )
    cells = tuple(choose_level_cells(width, height, settings.num_levels, min_res, max_res))
    coding = C.LATENTS_RANGE_CODED if settings.entropy_coding else C.LATENTS_FLOAT16
    header = Header(width, height, config, cells, coding)
    header.validate()
    return header


def encode_image(
    image: Any,
    preset: str = "default",
    quality: int | None = None,
    steps: int | None = None,
    device: str = "cpu",
    seed: int = 0,
    settings: EncoderSettings | None = None,
    progress: Callable[[int, HardScore | None, float], None] | None = None,
    entropy_coding: bool = True,
) -> EncodeResult:
    """Encode ``image`` (path, PIL image or uint8 array) and check the result by decoding it.

    ``entropy_coding=False`` (ignored when ``settings`` are given) writes the no-entropy baseline.
    """
    start = time.perf_counter()
    rgb = load_rgb(image)
    height, width = rgb.shape[:2]
    settings = settings or settings_for(preset, quality, steps, entropy_coding)
    torch.manual_seed(seed)
    np.random.seed(seed)
    header = make_header(width, height, settings)
    dev = torch.device(device)
    model = GridINR(header).to(dev)
    prior = FactorizedPrior(header.config.num_tables).to(dev)
    grid = PixelGrid(header, width, height, dev)
    target = torch.from_numpy(rgb.reshape(-1, 3).astype(np.float32) / 255.0).to(dev)
    result = train(model, prior, grid, target, settings, progress, seed)

    weight_steps = None
    if header.range_coded:
        weight_steps, _ = choose_weight_steps(model, grid, target, settings.lmbda)
    data = assemble_file(model.cpu(), weight_steps).data

    decoded = decode_bytes(data)
    return EncodeResult(
        data=data,
        width=width,
        height=height,
        psnr_db=psnr_db(decoded, rgb),
        encode_seconds=time.perf_counter() - start,
        settings=settings,
        training=result,
    )
