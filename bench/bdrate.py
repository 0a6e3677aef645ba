"""Bjøntegaard delta rate and delta PSNR: the average gap between two rate-distortion curves.

This is the original method (G. Bjøntegaard, "Calculation of average PSNR differences between RD-curves",
VCEG-M33, 2001), the one CompressAI and most learned-compression papers use: fit a cubic polynomial
(least squares) to each curve, log-rate as a function of PSNR for BD-rate and PSNR as a function of
log-rate for BD-PSNR, integrate both fits over the interval where the curves overlap, and compare the
average values. It is not the piecewise-cubic (PCHIP) variant of later JCT-VC common test conditions;
the two usually agree within a few tenths of a percent on smooth curves.

With fewer than four points a polynomial of degree ``points - 1`` is used (at least two points are
needed). Curves that do not overlap have no Bjøntegaard delta: the functions return ``nan``.

    >>> rates, psnrs = [0.25, 0.5, 1.0, 2.0], [28.0, 31.0, 34.0, 37.0]
    >>> round(bd_rate(rates, psnrs, [0.9 * r for r in rates], psnrs), 6)
    -10.0
    >>> round(bd_psnr(rates, psnrs, rates, [p + 1.0 for p in psnrs]), 6)
    1.0
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["bd_psnr", "bd_rate"]


def _check_curve(rates: Sequence[float], psnrs: Sequence[float], which: str) -> tuple[np.ndarray, np.ndarray]:
    rate = np.asarray(rates, dtype=np.float64)
    psnr = np.asarray(psnrs, dtype=np.float64)
    if rate.ndim != 1 or rate.shape != psnr.shape:
        msg = f"{which} curve: rates and PSNRs must be 1-D and of equal length, got {rate.shape} and {psnr.shape}"
        raise ValueError(msg)
    if len(rate) < 2:
        msg = f"{which} curve: at least 2 points are needed, got {len(rate)}"
        raise ValueError(msg)
    if not (np.all(np.isfinite(rate)) and np.all(np.isfinite(psnr))):
        msg = f"{which} curve: rates and PSNRs must be finite"
        raise ValueError(msg)
    if np.any(rate <= 0):
        msg = f"{which} curve: rates must be > 0 (they are compared in log scale)"
        raise ValueError(msg)
    return np.log(rate), psnr


def _mean_of_fit(x: np.ndarray, y: np.ndarray, low: float, high: float) -> float:
    """Average over [low, high] of the least-squares polynomial y(x) of degree min(3, points - 1)."""
    poly = np.polynomial.Polynomial.fit(x, y, deg=min(3, len(x) - 1))
    integral = poly.integ()
    return float((integral(high) - integral(low)) / (high - low))


def bd_rate(
    ref_rates: Sequence[float], ref_psnrs: Sequence[float], test_rates: Sequence[float], test_psnrs: Sequence[float]
) -> float:
    """Average rate difference of *test* against *ref* at equal quality, in percent.

    Args:
        ref_rates: Rates of the anchor curve (bpp, bytes, any unit shared with ``test_rates``).
        ref_psnrs: Quality of the anchor curve (PSNR in dB, or any other quality measure).
        test_rates: Rates of the curve being judged.
        test_psnrs: Its quality values.

    Returns:
        Percent rate change: -10 means *test* needs 10 % fewer bits than *ref* for the same PSNR.
        ``nan`` when the PSNR ranges do not overlap.

    Raises:
        ValueError: If a curve has fewer than 2 points, mismatched lengths, a non-positive rate or a
            non-finite value.
    """
    log_ref, psnr_ref = _check_curve(ref_rates, ref_psnrs, "reference")
    log_test, psnr_test = _check_curve(test_rates, test_psnrs, "test")
    low = max(psnr_ref.min(), psnr_test.min())
    high = min(psnr_ref.max(), psnr_test.max())
    if not high > low:
        return float("nan")
    diff = _mean_of_fit(psnr_test, log_test, low, high) - _mean_of_fit(psnr_ref, log_ref, low, high)
    return float((np.exp(diff) - 1.0) * 100.0)


def bd_psnr(
    ref_rates: Sequence[float], ref_psnrs: Sequence[float], test_rates: Sequence[float], test_psnrs: Sequence[float]
) -> float:
    """Average PSNR difference of *test* against *ref* at equal rate, in dB.

    Args:
        ref_rates: Rates of the anchor curve.
        ref_psnrs: PSNRs of the anchor curve in dB.
        test_rates: Rates of the curve being judged.
        test_psnrs: Its PSNRs in dB.

    Returns:
        dB gained by *test* over *ref* at the same rate (positive is better); ``nan`` when the
        rate ranges do not overlap.

    Raises:
        ValueError: Same conditions as :func:`bd_rate`.
    """
    log_ref, psnr_ref = _check_curve(ref_rates, ref_psnrs, "reference")
    log_test, psnr_test = _check_curve(test_rates, test_psnrs, "test")
    low = max(log_ref.min(), log_test.min())
    high = min(log_ref.max(), log_test.max())
    if not high > low:
        return float("nan")
    return _mean_of_fit(log_test, psnr_test, low, high) - _mean_of_fit(log_ref, psnr_ref, low, high)
