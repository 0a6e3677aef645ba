"""The normative synthesis MLP (SPEC §7 step 5): exact integer arithmetic, so every machine gets the same bits.

A float matrix product sums in the order its BLAS kernel picks (OpenBLAS picks one per CPU at run time,
``OPENBLAS_CORETYPE``), so float32 outputs differ in the last bit from machine to machine and decoded pixels
by one level. Here each layer's activations are fixed-point integers with ``MLP_FRACTION_BITS`` fractional
bits and its weights are the file's integer codes, so the products and their sums are integers: held in
float64 below 2^53 they are exact whatever order a BLAS, a GPU or another decoder sums them in, and the float64
matrix product stays as fast as BLAS makes it. Each layer then rounds once, elementwise (IEEE, the same
everywhere): ``rint(S * step + bias)``.

The clamp of each layer's inputs keeps every partial sum below 2^53: with ``|x| <= A`` and ``A * max_o
sum_k |q[o, k]| <= 2^53 - 1`` no order of summation can leave the exact integers. For any file the format
allows (codes below 2^15, at most 256 inputs) ``A >= 2^30``, i.e. activations up to ±1024 pass unclamped;
trained networks stay far below that.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from shc.format.constants import MLP_FRACTION_BITS

__all__ = ["FixedPointLayer", "FixedPointMLP", "Workspace", "input_clamp"]

EXACT_LIMIT = (1 << 53) - 1
"""Integers up to this are exact in float64 (and every partial sum of a layer stays within it)."""
ONE = float(1 << MLP_FRACTION_BITS)
"""1.0 in the activations' fixed point."""


def input_clamp(codes: np.ndarray) -> float:
    """``A``: the largest input magnitude for which every partial sum of ``codes @ x`` stays exact."""
    row_sums = np.abs(codes.astype(np.int64)).sum(axis=1) if codes.size else np.zeros(1, np.int64)
    return float(EXACT_LIMIT // max(1, int(row_sums.max())))


@dataclass(frozen=True)
class FixedPointLayer:
    """One affine layer: ``z = float64(codes @ x) * step + bias`` on fixed-point inputs ``x``."""

    codes: np.ndarray
    """``(outputs, inputs)`` float64 holding the file's integer weight codes."""
    step: float
    """The tensor's float32 step, as float64 (exact)."""
    bias: np.ndarray
    """``(outputs, 1)`` float64: ``bias_code * bias_step * 2^MLP_FRACTION_BITS``, exact."""
    clamp: float
    """``A``: inputs are clamped to ``[-A, A]`` (:func:`input_clamp`)."""

    @classmethod
    def from_codes(cls, weight_codes: np.ndarray, weight_step: float, bias_codes: np.ndarray,
                   bias_step: float) -> FixedPointLayer:
        # codes below 2^15 times a float32 step (24 significant bits): exact in float64, and so is * 2^F
        bias = bias_codes.astype(np.float64) * float(np.float32(bias_step)) * ONE
        return cls(weight_codes.astype(np.float64), float(np.float32(weight_step)), bias[:, None],
                   input_clamp(weight_codes))


class FixedPointMLP:
    """ReLU MLP over features ``(inputs, n)``: fixed point between layers, real values out (float64)."""

    def __init__(self, layers: list[FixedPointLayer]) -> None:
        self.layers = layers

    @property
    def outputs(self) -> int:
        return int(self.layers[-1].codes.shape[0])

    def to_fixed(self, features: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """The first layer's inputs: ``clamp(rint(float64(f) * 2^F), -A, A)`` (float64). The features are
        finite (SPEC §7 step 2 bounds them); a NaN would stay NaN here."""
        x = np.multiply(features, ONE, out=out, dtype=np.float64)  # float32 -> float64 and * 2^F: exact
        np.rint(x, out=x)
        clamp = self.layers[0].clamp
        return np.clip(x, -clamp, clamp, out=x)

    def __call__(self, features: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """``(outputs, n)`` float64 of float32 ``features`` ``(inputs, n)``: every value the same bits on
        every machine, whatever ``n`` (each pixel is computed on its own)."""
        return self.run(features, Workspace(self, features.shape[1]), out)

    def run(self, features: np.ndarray, work: Workspace, out: np.ndarray | None = None) -> np.ndarray:
        """:meth:`__call__` in the buffers of ``work`` (reused from chunk to chunk: fresh megabyte arrays
        cost page faults every time)."""
        n = features.shape[1]
        x = self.to_fixed(features, work.inputs[:, :n])
        last = len(self.layers) - 1
        for index, layer in enumerate(self.layers):
            z = work.layers[index % 2][: layer.codes.shape[0], :n]
            np.matmul(layer.codes, x, out=z)  # exact integers (SPEC §7 step 5)
            z *= layer.step
            z += layer.bias
            if index < last:  # ReLU, and the next layer's clamp, on integers
                np.rint(z, out=z)
                np.clip(z, 0.0, self.layers[index + 1].clamp, out=z)
            x = z
        # no NaN can arise: |codes @ x| < 2^53 and a finite step keep z finite or ±inf plus a finite bias
        return np.multiply(x, 1.0 / ONE, out=out)


class Workspace:
    """The float64 buffers of :meth:`FixedPointMLP.run` for up to ``pixels`` pixels at a time."""

    def __init__(self, network: FixedPointMLP, pixels: int) -> None:
        widest = max(layer.codes.shape[0] for layer in network.layers)
        self.inputs = np.empty((network.layers[0].codes.shape[1], pixels), dtype=np.float64)
        self.layers = (np.empty((widest, pixels), dtype=np.float64), np.empty((widest, pixels), dtype=np.float64))
