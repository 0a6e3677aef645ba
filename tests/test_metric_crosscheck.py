"""Cross-checks of ``shc bench``'s own metric code against the libraries everyone else uses.

``shc.bench.metrics.ms_ssim`` (numpy) against **pytorch-msssim** (``ms_ssim``, the implementation CompressAI
reports), and ``shc.bench.bdrate`` against the **bjontegaard** package (FAU Erlangen). Both libraries are in
the ``dev`` extra; without them these tests skip.

Tolerances, and why:

* MS-SSIM, same Gaussian window: |Δ| ≤ 1e-12. Both are the RGB mean of per-channel five-scale MS-SSIM
  (the CompressAI convention; a luma-only MS-SSIM, as some video papers report, is another number and not
  compared here), 'valid' 11-tap σ = 1.5 filtering, 2x2 average pooling with one zero row/column of padding
  on odd sides, cs and ssim clipped at 0.
* MS-SSIM, pytorch-msssim's defaults: |Δ| ≤ 5e-6. pytorch-msssim builds its window in float32 even for
  float64 images; the taps then sum to 1 only within float32 rounding, which biases every local variance
  by about ε·μ². Ours is built in float64. The measured gap is 1e-8 .. 1.3e-6, largest on dissimilar
  images, and it vanishes when both use the same window (the test above).
* BD-rate / BD-PSNR against ``method="cubic"``: |Δ| ≤ 1e-8 % and 1e-9 dB (measured: below 1e-11). Both are VCEG-M33: a
  least-squares cubic of log-rate in PSNR (PSNR in log-rate), integrated over the overlap. Log base (ours
  e, theirs 10) does not change the percentage.
* Against ``method="pchip"`` (and ``"akima"``), the piecewise interpolations of the later JCT-VC test
  conditions: a different definition, so only |Δ| ≤ 2 % of |BD-rate| + 0.3 percentage points and
  ≤ 3 % of |BD-PSNR| + 0.01 dB. On results/kodak-cpu's curves (8 - 11 points) the gaps are at most
  1.1 points (+72.5 % cubic vs +71.4 % pchip against AVIF) and 0.027 dB.
* Not compared: curves of three points. Ours fits the quadratic through them (degree = points - 1);
  bjontegaard's ``cubic`` calls ``np.polyfit(deg=3)`` on three points, which is underdetermined.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from shc.bench.bdrate import bd_psnr, bd_rate
from shc.bench.metrics import MIN_SIDE, _gaussian_window, ms_ssim

REPO = Path(__file__).resolve().parent.parent
KODAK_CPU = REPO / "results" / "kodak-cpu"


# --- MS-SSIM against pytorch-msssim -------------------------------------------------------------------


def _smooth(height: int, width: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    channels = [128 + 90 * np.sin(x / 9.0 + p) * np.cos(y / 13.0 - p) + rng.normal(0, 4, (height, width))
                for p in (0.0, 1.0, 2.0)]
    return np.clip(np.stack(channels, axis=-1), 0, 255).astype(np.uint8)


def _distorted(reference: np.ndarray, kind: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if kind == "jpeg":  # a real codec's blocking and ringing
        buffer = io.BytesIO()
        Image.fromarray(reference).save(buffer, "JPEG", quality=10)
        return np.asarray(Image.open(buffer).convert(Image.fromarray(reference).mode))
    if kind == "random":  # unrelated content: cs goes negative at some scales and is clipped
        return rng.integers(0, 256, reference.shape, dtype=np.uint8)
    sigma = {"noise2": 2.0, "noise24": 24.0}[kind]
    return np.clip(reference + rng.normal(0, sigma, reference.shape), 0, 255).astype(np.uint8)


PAIRS = [  # (height, width, distortion): the smallest side MS-SSIM allows, odd sides (padding), landscape
    (161, 161, "noise2"), (170, 203, "noise24"), (256, 384, "jpeg"), (333, 257, "random"), (200, 221, "jpeg"),
]


def _tensor(image: np.ndarray):
    import torch

    return torch.from_numpy(np.atleast_3d(image).astype(np.float64)).permute(2, 0, 1)[None]


@pytest.mark.parametrize(("height", "width", "kind"), PAIRS)
def test_ms_ssim_equals_pytorch_msssim_with_the_same_window(height: int, width: int, kind: str) -> None:
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    torch = pytest.importorskip("torch")
    a = _smooth(height, width)
    b = _distorted(a, kind, seed=height)
    window = torch.from_numpy(_gaussian_window()).reshape(1, 1, 1, -1).repeat(3, 1, 1, 1)
    theirs = pytorch_msssim.ms_ssim(_tensor(a), _tensor(b), data_range=255, win=window).item()
    assert ms_ssim(a, b) == pytest.approx(theirs, abs=1e-12)


@pytest.mark.parametrize(("height", "width", "kind"), PAIRS)
def test_ms_ssim_agrees_with_pytorch_msssim_defaults(height: int, width: int, kind: str) -> None:
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    a = _smooth(height, width)
    b = _distorted(a, kind, seed=height)
    ours = ms_ssim(a, b)
    for scale, data_range in ((1.0, 255), (1 / 255, 1.0)):  # 0..255 as bench calls it, 0..1 as CompressAI does
        theirs = pytorch_msssim.ms_ssim(_tensor(a) * scale, _tensor(b) * scale, data_range=data_range).item()
        assert ours == pytest.approx(theirs, abs=5e-6)
    assert 0.0 < ours < 1.0


def test_ms_ssim_grayscale_and_size_limit_agree_with_pytorch_msssim() -> None:
    pytorch_msssim = pytest.importorskip("pytorch_msssim")
    gray = _smooth(MIN_SIDE, 190)[..., 1]
    noisy = _distorted(gray, "noise24", seed=5)
    theirs = pytorch_msssim.ms_ssim(_tensor(gray), _tensor(noisy), data_range=255).item()
    assert ms_ssim(gray, noisy) == pytest.approx(theirs, abs=5e-6)
    small = _smooth(MIN_SIDE - 1, 190)  # one row too few for five scales: they refuse, we say nan
    with pytest.raises(AssertionError, match="larger than 160"):
        pytorch_msssim.ms_ssim(_tensor(small), _tensor(small), data_range=255)
    assert np.isnan(ms_ssim(small, small))


# --- BD-rate and BD-PSNR against bjontegaard -----------------------------------------------------------


def _synthetic_curves() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """(name, anchor bpp, anchor PSNR, test bpp, test PSNR): photo-codec-like curves, PSNR ≈ a + b·log(bpp)
    with curvature and measurement noise; 4 .. 8 points, shifted rate ranges, partial overlap."""
    rng = np.random.default_rng(7)
    cases = []
    for index, (points_a, points_t, gain, shift) in enumerate(
        [(4, 4, 1.5, 1.0), (6, 5, -0.8, 1.3), (8, 8, 0.3, 0.7), (5, 7, 2.5, 1.6), (7, 4, -2.0, 0.9)]
    ):
        bpp_a = np.geomspace(0.08, 2.0, points_a) * rng.uniform(0.9, 1.1, points_a)
        bpp_t = np.geomspace(0.08 * shift, 2.0 * shift, points_t) * rng.uniform(0.9, 1.1, points_t)
        bpp_a.sort()
        bpp_t.sort()

        def psnr(bpp: np.ndarray, extra: float) -> np.ndarray:
            x = np.log(bpp)
            return 32.0 + 4.2 * x - 0.25 * x * x + extra + rng.normal(0, 0.05, bpp.size)

        cases.append((f"synthetic{index}", bpp_a, psnr(bpp_a, 0.0), bpp_t, psnr(bpp_t, gain)))
    return cases


def _kodak_curves() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    """results/kodak-cpu's measured curves (8 - 11 points: least squares, not interpolation), each classic
    codec as the anchor of shc's curve, as bd_table.md has them."""
    def curve(name: str) -> tuple[np.ndarray, np.ndarray]:
        results = json.loads((KODAK_CPU / f"{name}.json").read_text(encoding="utf-8"))["results"]
        return np.asarray(results["bpp"], float), np.asarray(results["psnr-rgb"], float)

    if not (KODAK_CPU / "shc.json").exists():
        return []
    test = curve("shc")
    anchors = sorted(path.stem for path in KODAK_CPU.glob("*.json") if path.stem not in ("shc", "meta"))
    return [(f"kodak-cpu/{name}", *curve(name), *test) for name in anchors]


def _curves() -> list[tuple[str, np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
    return _synthetic_curves() + _kodak_curves()


def _theirs(function, method: str, anchor_rate, anchor_psnr, test_rate, test_psnr) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # their "insufficient overlap" notice; we compare on any overlap
        return float(function(anchor_rate, anchor_psnr, test_rate, test_psnr, method=method,
                              require_matching_points=False, min_overlap=0))


@pytest.mark.parametrize("case", _curves(), ids=lambda case: case[0])
def test_bd_equals_bjontegaard_cubic(case) -> None:
    bjontegaard = pytest.importorskip("bjontegaard")
    _, *curves = case
    assert bd_rate(*curves) == pytest.approx(_theirs(bjontegaard.bd_rate, "cubic", *curves), abs=1e-8)
    assert bd_psnr(*curves) == pytest.approx(_theirs(bjontegaard.bd_psnr, "cubic", *curves), abs=1e-9)


@pytest.mark.parametrize("case", _curves(), ids=lambda case: case[0])
@pytest.mark.parametrize("method", ["pchip", "akima"])
def test_bd_close_to_bjontegaard_piecewise_interpolation(case, method: str) -> None:
    bjontegaard = pytest.importorskip("bjontegaard")
    _, *curves = case
    ours_rate, ours_psnr = bd_rate(*curves), bd_psnr(*curves)
    assert abs(ours_rate - _theirs(bjontegaard.bd_rate, method, *curves)) <= 0.02 * abs(ours_rate) + 0.3
    assert abs(ours_psnr - _theirs(bjontegaard.bd_psnr, method, *curves)) <= 0.03 * abs(ours_psnr) + 0.01


def test_kodak_curves_are_there_to_compare() -> None:
    """The committed Kodak run feeds the least-squares cases above; say so if it moves, rather than skip."""
    if not KODAK_CPU.exists():
        pytest.skip("results/kodak-cpu is not in this checkout")
    assert len(_kodak_curves()) >= 5
