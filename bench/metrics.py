"""MS-SSIM on 8-bit RGB in plain numpy, matching pytorch-msssim (the metric CompressAI reports).

Algorithm (Wang, Simoncelli & Bovik 2003, "Multi-scale structural similarity for image quality
assessment"), exactly as pytorch-msssim's ``ms_ssim(X, Y, data_range=255)`` computes it:

* an 11-tap Gaussian window, sigma 1.5, applied separably with no padding ("valid" filtering);
* C1 = (0.01 * 255)^2, C2 = (0.03 * 255)^2;
* five scales with weights (0.0448, 0.2856, 0.3001, 0.2363, 0.1333); between scales a 2x2 average
  pool, zero-padding one pixel on each side of an odd dimension (torch's ``avg_pool2d`` with
  ``padding=size % 2`` and ``count_include_pad=True``);
* per channel: the contrast-structure means of scales 1-4 and the SSIM mean of scale 5, each clipped
  at 0, raised to their weights and multiplied; the result is the mean over the three channels.

The five scales need the smaller side to exceed (11 - 1) * 2^4 = 160 pixels; smaller images get
``nan`` rather than a number computed on a different definition.

    >>> import numpy as np
    >>> x = np.random.default_rng(0).integers(0, 256, (192, 200, 3), dtype=np.uint8)
    >>> ms_ssim(x, x)
    1.0
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

__all__ = ["MIN_SIDE", "MS_SSIM_WEIGHTS", "ms_ssim"]

MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
WINDOW_SIZE = 11
WINDOW_SIGMA = 1.5
MIN_SIDE = (WINDOW_SIZE - 1) * 2 ** (len(MS_SSIM_WEIGHTS) - 1) + 1  # 161
"""Smallest height and width for which :func:`ms_ssim` returns a number."""


def _gaussian_window() -> np.ndarray:
    coords = np.arange(WINDOW_SIZE, dtype=np.float64) - WINDOW_SIZE // 2
    window = np.exp(-(coords**2) / (2.0 * WINDOW_SIGMA**2))
    return window / window.sum()


def _filter_valid(x: np.ndarray, window: np.ndarray) -> np.ndarray:
    """Separable 'valid' filtering of a (C, H, W) stack: output is (C, H - 10, W - 10).

    A strided window view times the taps is a no-copy correlation, several times faster than a loop.
    """
    rows = sliding_window_view(x, len(window), axis=1) @ window
    return sliding_window_view(rows, len(window), axis=2) @ window


def _ssim_and_cs(x: np.ndarray, y: np.ndarray, window: np.ndarray, data_range: float) -> tuple[np.ndarray, np.ndarray]:
    """Per-channel mean SSIM and mean contrast-structure term at one scale."""
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    mu_x, mu_y, xx, yy, xy = np.split(_filter_valid(np.concatenate([x, y, x * x, y * y, x * y]), window), 5)
    var_x = xx - mu_x * mu_x
    var_y = yy - mu_y * mu_y
    cov = xy - mu_x * mu_y
    cs_map = (2.0 * cov + c2) / (var_x + var_y + c2)
    ssim_map = (2.0 * mu_x * mu_y + c1) / (mu_x * mu_x + mu_y * mu_y + c1) * cs_map
    return ssim_map.mean(axis=(1, 2)), cs_map.mean(axis=(1, 2))


def _downsample(x: np.ndarray) -> np.ndarray:
    """2x2 average pool of a (C, H, W) stack; odd sides get one zero row/column on each side first."""
    pad_h, pad_w = x.shape[1] % 2, x.shape[2] % 2
    if pad_h or pad_w:
        x = np.pad(x, ((0, 0), (pad_h, pad_h), (pad_w, pad_w)))
    height, width = x.shape[1] // 2 * 2, x.shape[2] // 2 * 2
    x = x[:, :height, :width]
    return 0.25 * (x[:, 0::2, 0::2] + x[:, 1::2, 0::2] + x[:, 0::2, 1::2] + x[:, 1::2, 1::2])


def ms_ssim(a: np.ndarray, b: np.ndarray, data_range: float = 255.0) -> float:
    """Five-scale MS-SSIM of two HxWx3 (or HxW) images in 0..data_range, averaged over channels.

    Args:
        a: Reference image, uint8 or float, HxWxC or HxW.
        b: Distorted image of the same shape.
        data_range: Peak value (255 for 8-bit).

    Returns:
        MS-SSIM in [0, 1] (1 for identical images), or ``nan`` when either side is below
        :data:`MIN_SIDE` (161) pixels.

    Raises:
        ValueError: If the shapes differ or are not 2-D/3-D.
    """
    if a.shape != b.shape:
        msg = f"shape mismatch: {a.shape} vs {b.shape}"
        raise ValueError(msg)
    if a.ndim not in (2, 3):
        msg = f"expected an HxW or HxWxC image, got shape {a.shape}"
        raise ValueError(msg)
    if min(a.shape[:2]) < MIN_SIDE:
        return float("nan")
    x = np.atleast_3d(np.asarray(a, dtype=np.float64)).transpose(2, 0, 1)
    y = np.atleast_3d(np.asarray(b, dtype=np.float64)).transpose(2, 0, 1)
    window = _gaussian_window()
    factors = []
    for level in range(len(MS_SSIM_WEIGHTS)):
        ssim, cs = _ssim_and_cs(x, y, window, data_range)
        if level < len(MS_SSIM_WEIGHTS) - 1:
            factors.append(np.maximum(cs, 0.0))
            x, y = _downsample(x), _downsample(y)
    factors.append(np.maximum(ssim, 0.0))
    weights = np.asarray(MS_SSIM_WEIGHTS)[:, None]
    per_channel = np.prod(np.stack(factors) ** weights, axis=0)
    return float(per_channel.mean())
