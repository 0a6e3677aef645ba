"""Same pixels on every machine (SPEC §7): decoded bytes do not depend on the BLAS kernel, the thread count or
the tiling, and the fixed-point MLP stays within its stated error bound of exact arithmetic.

numpy's OpenBLAS picks its kernel per CPU at run time; ``OPENBLAS_CORETYPE`` forces another one. Before
version 0.10.0 the float32 matrix products of the MLP summed in the kernel's order, and five kernels gave
five different decodes of one Kodak file. Each variant below decodes every golden file in a fresh
interpreter (the kernel is chosen when numpy loads) and must print the very bytes ``golden.json`` pins.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from shc.format import constants as C
from shc.format.container import read_file
from shc.format.decoder import Synthesis, mlp_of, to_uint8
from shc.format.entropy import file_latents
from shc.format.mlp import EXACT_LIMIT, FixedPointLayer, FixedPointMLP

DATA_DIR = Path(__file__).parent / "data"
GOLDEN = json.loads((DATA_DIR / "golden.json").read_text())
NAMES = sorted(GOLDEN["files"])

X86_KERNELS = {"Prescott": "sse3", "Sandybridge": "avx", "Haswell": "avx2", "Zen": "avx2", "SkylakeX": "avx512f"}
"""OpenBLAS core types to force, with the CPU flag each needs (a kernel the CPU lacks would crash)."""

PROBE = r"""
import hashlib, json, sys
import numpy as np
from shc.format.decoder import Synthesis, decode_bytes
from shc.format.reader import ShcReader
sys.path.insert(0, sys.argv[1])
import make_golden
out = {}
for name in json.loads(sys.argv[2]):
    data = open(f"{sys.argv[1]}/{name}", "rb").read()
    pins = {"native": hashlib.sha256(decode_bytes(data).tobytes()).hexdigest()}
    for key in make_golden.RESCALED:
        pins[key] = make_golden.pixel_sha256(decode_bytes(data, **make_golden.decode_kwargs(key)))
    reader = ShcReader(data)
    w, h = 2 * reader.header.width + 1, 2 * reader.header.height - 1
    box = (w // 3, h // 4, w - w // 5, h - 3)
    synthesis = ShcReader(data).synthesis(w, h, box=box)
    synthesis.threads = 3
    pins["crop"] = hashlib.sha256(synthesis.render(w, h, box).tobytes()).hexdigest()
    pins["levels"] = hashlib.sha256(decode_bytes(data, levels=2, scale=1.5).tobytes()).hexdigest()
    out[name] = pins
print(json.dumps(out, sort_keys=True))
"""


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        if line.startswith("flags"):
            return set(line.split(":", 1)[1].split())
    return set()


def _variants() -> list[dict[str, str]]:
    """Environments to decode under: each OpenBLAS kernel this CPU can run (x86) × 1 and 2 BLAS threads."""
    kernels: list[str | None] = [None]
    if platform.machine().lower() in ("x86_64", "amd64"):
        flags = _cpu_flags()
        kernels += [kernel for kernel, flag in X86_KERNELS.items() if flag in flags or (flag == "sse3" and "pni" in flags)]
    return [{**({"OPENBLAS_CORETYPE": kernel} if kernel else {}), "OPENBLAS_NUM_THREADS": str(threads),
             "OMP_NUM_THREADS": str(threads)} for kernel in kernels for threads in (1, 2)]


def _probe(env_overrides: dict[str, str]) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("OPENBLAS", "OMP_", "GOTO"))}
    env.update(env_overrides)
    result = subprocess.run([sys.executable, "-c", PROBE, str(DATA_DIR), json.dumps(NAMES)], env=env,
                            capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, f"{env_overrides}: {result.stderr[-2000:]}"
    return json.loads(result.stdout)


@pytest.mark.slow
def test_every_blas_kernel_and_thread_count_decodes_the_same_bytes() -> None:
    """The golden files at native size, every pinned size, a crop rendered in 3 threads and a level prefix:
    the same bytes under every kernel and thread count, and the bytes golden.json pins."""
    variants = _variants()
    assert len(variants) >= 2
    results = {json.dumps(variant, sort_keys=True): _probe(variant) for variant in variants}
    reference = next(iter(results.values()))
    for name in NAMES:
        entry = GOLDEN["files"][name]
        assert reference[name]["native"] == entry["decoded_sha256"], name
        for key, expected in entry["rescaled_sha256"].items():
            assert reference[name][key] == expected, (name, key)
    for variant, pins in results.items():
        assert pins == reference, f"decoded bytes differ under {variant}"


@pytest.mark.parametrize("threads", [1, 2, 5])
def test_render_threads_do_not_change_pixels(threads: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Strips rendered side by side in several threads come out in order and bit-identical to one thread."""
    monkeypatch.setattr(C, "DECODE_TILE_PIXELS", 700)  # many strips
    parsed = read_file((DATA_DIR / "lighthouse_96x128_q5.shc").read_bytes())
    synthesis = Synthesis(parsed, file_latents(parsed))
    synthesis.threads = 1
    reference = synthesis.render(150, 101)
    synthesis.threads = threads
    np.testing.assert_array_equal(synthesis.render(150, 101), reference)
    np.testing.assert_array_equal(synthesis.render(150, 101, (7, 9, 140, 100)), reference[9:100, 7:140])


def _exact_mlp(network: FixedPointMLP, features: np.ndarray) -> tuple[np.ndarray, float]:
    """The real-valued MLP in float64 with the file's exact weights (codes × steps), no fixed point, and
    the error bound SPEC §7 step 5 states for the fixed-point result: each rounding to 2^-F (the inputs and
    every hidden layer) adds at most 2^-(F+1), carried through the later layers by their row sums of |W|."""
    half_step = 2.0 ** -(C.MLP_FRACTION_BITS + 1)
    x, bound = features.astype(np.float64), half_step
    for index, layer in enumerate(network.layers):
        weights = layer.codes * layer.step
        x = weights @ x + layer.bias / 2.0**C.MLP_FRACTION_BITS
        bound *= float(np.abs(weights).sum(axis=1).max())
        if index < len(network.layers) - 1:
            x = np.maximum(x, 0.0)
            bound += half_step
    return x, bound


@pytest.mark.parametrize("name", NAMES)
def test_fixed_point_mlp_is_within_its_bound_of_exact_arithmetic(name: str) -> None:
    parsed = read_file((DATA_DIR / name).read_bytes())
    synthesis = Synthesis(parsed, file_latents(parsed))
    width, height = 61, 47
    features = synthesis.tile_features(width, height, np.arange(width), np.arange(height))
    rng = np.random.default_rng(0)
    features = np.concatenate([features, rng.normal(0, 2, features.shape).astype(np.float32)], axis=1)
    fixed = synthesis.mlp(features)
    exact, bound = _exact_mlp(synthesis.network, features)
    error = float(np.abs(fixed - exact).max())
    assert error <= bound * (1 + 1e-9) + 1e-12, (error, bound)
    assert bound < 0.25 / 255  # well below the 8-bit output's half step
    # and the 8-bit output differs from exact arithmetic's only where a value sits within the bound of a
    # rounding boundary
    differs = to_uint8(fixed.T) != to_uint8(exact.T)
    near = np.abs((np.clip(exact.T, 0, 1) * 255) % 1 - 0.5) <= bound * 255 + 1e-9
    assert not np.any(differs & ~near)


def test_every_partial_sum_is_exact_at_the_clamp() -> None:
    """Worst case the format allows (codes at ±(2^15 - 1), 256 inputs, inputs at the clamp): the integer sums
    stay below 2^53, so the fixed-point result equals exact integer arithmetic in any summation order."""
    codes = np.full((2, 256), C.WEIGHT_CODE_MAX, dtype=np.int64)
    codes[1, ::2] = -C.WEIGHT_CODE_MAX
    layer = FixedPointLayer.from_codes(codes, 1.0, np.zeros(2, np.int64), 1.0)
    assert layer.clamp * C.WEIGHT_CODE_MAX * 256 <= EXACT_LIMIT and layer.clamp >= 2**30
    network = FixedPointMLP([layer])
    features = np.full((256, 3), 1e30, dtype=np.float32)  # clamped to A
    features[:, 1] = -1e30
    features[::3, 2] = 0.0
    out = network(features) * 2.0**C.MLP_FRACTION_BITS
    clamp = int(layer.clamp)
    expected = codes @ np.array([[clamp] * 256, [-clamp] * 256, [0 if k % 3 == 0 else clamp for k in range(256)]]).T
    np.testing.assert_array_equal(out, expected.astype(np.float64))
    assert int(np.abs(expected).max()) <= EXACT_LIMIT


def test_a_pixel_is_computed_on_its_own() -> None:
    """The MLP of one pixel alone, of the pixels in any chunking, and of all together: the same bits."""
    parsed = read_file((DATA_DIR / "lighthouse_96x128_q5.shc").read_bytes())
    network = mlp_of(parsed.weights.tensors(parsed.header), parsed.header.config.mlp_depth)
    features = np.random.default_rng(1).normal(0, 3, (network.layers[0].codes.shape[1], 999)).astype(np.float32)
    whole = network(features)
    for chunk in (1, 2, 7, 500):
        parts = [network(features[:, start : start + chunk]) for start in range(0, features.shape[1], chunk)]
        np.testing.assert_array_equal(np.concatenate(parts, axis=1), whole, err_msg=f"chunks of {chunk}")
    digest = hashlib.sha256(whole.tobytes()).hexdigest()
    assert digest == hashlib.sha256(network(features.copy(order="F")).tobytes()).hexdigest()
