"""The WGHT section (SPEC §3): the network's weights as stored (a float32 step and integer values per
tensor), their shapes in file order, and the payload's bytes both ways (version 4 on: exp-Golomb codes;
versions 2-3: int8).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

from shc.format import constants as C
from shc.format.binary import Reader
from shc.format.errors import ShcFormatError
from shc.format.expgolomb import MAX_ORDER, BitReader, best_order, pack, zigzag
from shc.format.header import Header

__all__ = ["QuantizedWeights", "num_weights", "parse_weights", "weight_shapes", "weights_payload"]


@dataclass(frozen=True)
class QuantizedWeights:
    """The network weights as stored: per tensor (``weight_shapes`` order) a float32 step and integer values."""

    scales: np.ndarray  # float32, one per tensor (the quantization step), finite and >= 0
    values: np.ndarray  # integers, flat; version 4: each in [-WEIGHT_CODE_MAX, WEIGHT_CODE_MAX] (2-3: int8)

    def dequantized(self, header: Header) -> np.ndarray:
        """Flat float32 weights: ``float32(value) * scale`` (one IEEE multiplication, the same everywhere)."""
        sizes = [int(np.prod(shape)) for _, shape in weight_shapes(header)]
        return self.values.astype(np.float32) * np.repeat(self.scales.astype(np.float32), sizes)

    def tensors(self, header: Header) -> dict[str, tuple[np.ndarray, np.float32]]:
        """Per tensor name (:func:`weight_shapes`): its integer codes in its shape, and its float32 step."""
        out, offset = {}, 0
        for (name, shape), step in zip(weight_shapes(header), self.scales.astype(np.float32)):
            count = int(np.prod(shape))
            out[name] = (self.values[offset : offset + count].reshape(shape), step)
            offset += count
        return out

    def validate(self, header: Header) -> None:
        shapes = weight_shapes(header)
        if self.scales.shape != (len(shapes),) or self.values.shape != (num_weights(header),):
            msg = f"expected {len(shapes)} scales and {num_weights(header)} weights for this header"
            raise ShcFormatError(msg)
        if not np.all(np.isfinite(self.scales)) or np.any(self.scales < 0):
            msg = "WGHT section has a non-finite or negative weight scale"
            raise ShcFormatError(msg)
        if self.values.size and int(np.abs(self.values.astype(np.int64)).max()) > C.WEIGHT_CODE_MAX:
            msg = f"WGHT section has a weight outside [-{C.WEIGHT_CODE_MAX}, {C.WEIGHT_CODE_MAX}]"
            raise ShcFormatError(msg)


def weight_shapes(header: Header) -> list[tuple[str, tuple[int, ...]]]:
    """Names and shapes of the stored weights, in file order. Linear layers are ``y = x @ W.T + b``."""
    cfg = header.config
    shapes: list[tuple[str, tuple[int, ...]]] = [
        ("latent_decoder.weight", (cfg.feat_dim, cfg.latent_dim)),
        ("latent_decoder.bias", (cfg.feat_dim,)),
    ]
    dims = [cfg.num_levels * cfg.feat_dim] + [cfg.mlp_width] * cfg.mlp_depth + [cfg.channels]
    for k in range(len(dims) - 1):
        shapes += [(f"mlp.{k}.weight", (dims[k + 1], dims[k])), (f"mlp.{k}.bias", (dims[k + 1],))]
    return shapes


def num_weights(header: Header) -> int:
    """How many weight values the header implies (all tensors of :func:`weight_shapes`)."""
    return sum(int(np.prod(shape)) for _, shape in weight_shapes(header))


def weights_payload(header: Header, weights: QuantizedWeights) -> bytes:
    """Version 4 WGHT (SPEC §3): per tensor a f32 step and a u8 order k, then every value's signed
    exp-Golomb code of its tensor's order."""
    heads, codes, offset = [], [], 0
    for (_, shape), scale in zip(weight_shapes(header), weights.scales):
        count = int(np.prod(shape))
        unsigned = zigzag(weights.values[offset : offset + count])
        order = best_order(unsigned)
        heads.append(struct.pack("<fB", float(scale), order))
        codes.append((unsigned, order))
        offset += count
    return b"".join(heads) + pack(codes)


def parse_weights(payload: bytes, header: Header, version: int) -> QuantizedWeights:
    """The weights of a WGHT payload of format ``version``, validated against the header."""
    if version < C.COMPACT_SIDE_INFO_VERSION:
        return _parse_int8_weights(payload, header)
    shapes = weight_shapes(header)
    reader = Reader(payload, "WGHT section")
    steps, orders = [], []
    for name, _ in shapes:
        step, order = reader.unpack("fB", f"{name} step and order")
        if order > MAX_ORDER:
            msg = f"WGHT section: {name} order {order} is above {MAX_ORDER}"
            raise ShcFormatError(msg)
        steps.append(step)
        orders.append(order)
    bits = BitReader(reader.bytes(reader.remaining, "weight codes"), "WGHT section")
    values = [bits.signed_array(int(np.prod(shape)), order, f"{name} values") for (name, shape), order in zip(shapes, orders)]
    bits.expect_end()
    weights = QuantizedWeights(np.array(steps, dtype=np.float32), np.concatenate(values))
    weights.validate(header)
    return weights


def _parse_int8_weights(payload: bytes, header: Header) -> QuantizedWeights:
    """Versions 2-3: per tensor a f32 scale and its values as int8."""
    shapes = weight_shapes(header)
    expected = 4 * len(shapes) + num_weights(header)
    if len(payload) != expected:
        msg = f"WGHT section has {len(payload)} bytes, the header implies {expected}"
        raise ShcFormatError(msg)
    reader = Reader(payload, "WGHT section")
    scales, values = [], []
    for name, shape in shapes:
        scales.append(reader.unpack("f", f"{name} scale")[0])
        values.append(np.frombuffer(reader.bytes(int(np.prod(shape)), f"{name} values"), dtype="i1"))
    weights = QuantizedWeights(np.array(scales, dtype=np.float32), np.concatenate(values).astype(np.int64))
    if int(np.abs(weights.values).max(initial=0)) > C.WEIGHT_INT_MAX:
        msg = f"WGHT section has a weight outside [-{C.WEIGHT_INT_MAX}, {C.WEIGHT_INT_MAX}]"
        raise ShcFormatError(msg)
    weights.validate(header)
    return weights
