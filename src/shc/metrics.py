"""Image-quality metrics shared by the CLI report and the benchmark (numpy only)."""

from __future__ import annotations

import numpy as np

__all__ = ["channel_squared_errors", "mse", "psnr_db", "psnr_from_mse", "psnr_rgb_alpha_db"]

STRIP_ROWS = 512
"""Rows compared at a time by :func:`channel_squared_errors`: no float copy of a large image."""


def mse(a: np.ndarray, b: np.ndarray) -> float:
    """Mean squared error of two same-shaped 8-bit (or float 0..255) arrays."""
    if a.shape != b.shape:
        msg = f"shape mismatch: {a.shape} vs {b.shape}"
        raise ValueError(msg)
    diff = a.astype(np.float64) - b.astype(np.float64)
    return float(np.mean(diff * diff))


def psnr_from_mse(err: float, peak: float = 255.0) -> float:
    """PSNR in dB of a mean squared error; inf when it is 0 (identical images)."""
    if err == 0.0:
        return float("inf")
    return float(10.0 * np.log10(peak * peak / err))


def psnr_db(a: np.ndarray, b: np.ndarray, peak: float = 255.0) -> float:
    """RGB PSNR in dB over all pixels and channels (CompressAI convention); inf when identical."""
    return psnr_from_mse(mse(a, b), peak)


def channel_squared_errors(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Sum of squared differences per channel (float64, ``(channels,)``) of two same-shaped 8-bit
    ``(H, W, C)`` images, a few rows at a time in integers: for images too large to copy as floats, and
    for images that arrive in strips (add the strips' sums)."""
    if a.shape != b.shape or a.ndim != 3:
        msg = f"expected two (H, W, C) images of one shape, got {a.shape} and {b.shape}"
        raise ValueError(msg)
    sums = np.zeros(a.shape[2])
    for top in range(0, a.shape[0], STRIP_ROWS):
        diff = a[top : top + STRIP_ROWS].astype(np.int32) - b[top : top + STRIP_ROWS]
        sums += np.einsum("hwc,hwc->c", diff, diff, dtype=np.float64)
    return sums


def psnr_rgb_alpha_db(a: np.ndarray, b: np.ndarray) -> tuple[float, float | None]:
    """PSNR of the colours and, separately, of the alpha channel of two ``(H, W, 3 | 4)`` images (alpha
    None for RGB): one figure over all four channels would hide an alpha error behind good colours."""
    if a.shape != b.shape or a.ndim != 3 or a.shape[2] not in (3, 4):
        msg = f"expected two (H, W, 3) or (H, W, 4) images of one shape, got {a.shape} and {b.shape}"
        raise ValueError(msg)
    alpha = psnr_db(a[..., 3], b[..., 3]) if a.shape[2] == 4 else None
    return psnr_db(a[..., :3], b[..., :3]), alpha
