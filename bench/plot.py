"""The rate-distortion plot: measured codecs as solid lines with markers, published ones dashed.

Uses matplotlib's object API with the Agg canvas directly (no pyplot), so it never opens a window,
never touches the global backend, and works on headless machines.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from shc.bench.report import Curve

__all__ = ["plot_rd"]


def plot_rd(curves: Sequence[Curve], path: Path, title: str = "Kodak") -> Path:
    """Draw RGB PSNR against bpp for every curve with at least one point and save a PNG.

    The x range follows the measured curves (published points beyond it are cut off) so that a
    published curve reaching 3 bpp does not squash the comparison that matters.

    Args:
        curves: Measured and published curves (``Curve.published`` picks the line style).
        path: Output ``.png`` path.
        title: Plot title (dataset name).

    Returns:
        ``path``.
    """
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(12, 7), dpi=110)
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    measured = [curve for curve in curves if not curve.published and curve.bpp]
    published = [curve for curve in curves if curve.published and curve.bpp]
    solid, dashed = colormaps["tab10"], colormaps["tab20b"]  # distinct palettes: no colour means two things
    for index, curve in enumerate(measured):
        color = solid(index % solid.N)
        axes.plot(curve.bpp, curve.psnr, marker="o", markersize=4, linewidth=1.8, color=color, label=curve.name)
    for index, curve in enumerate(published):
        color = dashed(index % dashed.N)
        label = f"{curve.name} (published)"
        axes.plot(curve.bpp, curve.psnr, linestyle="--", linewidth=1.1, color=color, label=label)
    if measured:
        x_max = 1.05 * max(max(curve.bpp) for curve in measured)
        points = [(b, p) for curve in measured + published for b, p in zip(curve.bpp, curve.psnr)]
        visible = [p for b, p in points if b <= x_max and math.isfinite(p)]
        axes.set_xlim(0.0, x_max)
        if visible:
            axes.set_ylim(min(visible) - 0.5, max(visible) + 0.5)
    axes.set_xlabel("bits per pixel (bpp)")
    axes.set_ylabel("RGB PSNR (dB)")
    axes.set_title(f"{title}: rate-distortion")
    axes.grid(True, alpha=0.3)
    if measured or published:
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize="small", frameon=False)
    figure.tight_layout()
    figure.savefig(path)
    return path
