"""Write ``display_p3.icc``: a small ICC v2 matrix/TRC display profile with the Display P3 primaries.

There is no ICC file on the build machines, and the tests need a real wide-gamut profile (one whose colours
differ from sRGB) to check that shc keeps it. Display P3 = DCI-P3 primaries, the D65 white point and the
sRGB tone curve. Run from the repository root (deterministic: the same bytes every time)::

    .venv/bin/python tests/data/display_p3.py

Layout (ICC.1:2001-04, version 2.1): a 128-byte header, the tag table, then desc, cprt, wtpt, the three
colorants adapted to the D50 connection space with the Bradford transform, and one 1024-entry tone curve
that rTRC, gTRC and bTRC share.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

PATH = Path(__file__).resolve().parent / "display_p3.icc"
DESCRIPTION = "Display P3 (shc test profile)"
PRIMARIES = ((0.680, 0.320), (0.265, 0.690), (0.150, 0.060))  # x, y of red, green, blue
WHITE_D65 = (0.3127, 0.3290)
D50 = np.array([0.9642, 1.0, 0.8249])  # the ICC profile connection space's illuminant
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
CURVE_POINTS = 1024


def xyz(x: float, y: float) -> np.ndarray:
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def colorants() -> np.ndarray:
    """Columns: XYZ (D50-adapted) of full red, green and blue; they sum to D50."""
    primaries = np.stack([xyz(*p) for p in PRIMARIES], axis=1)
    white = xyz(*WHITE_D65)
    rgb_to_xyz = primaries * np.linalg.solve(primaries, white)  # scale each primary so that R=G=B=1 is white
    cone_d65, cone_d50 = BRADFORD @ white, BRADFORD @ D50
    adapt = np.linalg.inv(BRADFORD) @ np.diag(cone_d50 / cone_d65) @ BRADFORD
    return adapt @ rgb_to_xyz


def srgb_to_linear(v: np.ndarray) -> np.ndarray:
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def s15f16(values) -> bytes:
    return b"".join(struct.pack(">i", round(float(v) * 65536)) for v in values)


def pad4(data: bytes) -> bytes:
    return data + b"\0" * (-len(data) % 4)


def text_description(text: str) -> bytes:
    """ICC v2 textDescriptionType: ASCII, an empty Unicode part and an empty ScriptCode part."""
    ascii_text = text.encode("ascii") + b"\0"
    return b"desc" + bytes(4) + struct.pack(">I", len(ascii_text)) + ascii_text + bytes(8) + bytes(3) + bytes(67)


def profile() -> bytes:
    red, green, blue = colorants().T
    curve = np.rint(srgb_to_linear(np.linspace(0.0, 1.0, CURVE_POINTS)) * 65535).astype(">u2")
    trc = b"curv" + bytes(4) + struct.pack(">I", CURVE_POINTS) + curve.tobytes()
    tags = [
        (b"desc", text_description(DESCRIPTION)),
        (b"cprt", b"text" + bytes(4) + b"No copyright, use freely\0"),
        (b"wtpt", b"XYZ " + bytes(4) + s15f16(xyz(*WHITE_D65))),
        (b"rXYZ", b"XYZ " + bytes(4) + s15f16(red)),
        (b"gXYZ", b"XYZ " + bytes(4) + s15f16(green)),
        (b"bXYZ", b"XYZ " + bytes(4) + s15f16(blue)),
        (b"rTRC", trc),
    ]
    shared = [(b"gTRC", b"rTRC"), (b"bTRC", b"rTRC")]
    offset = 128 + 4 + 12 * (len(tags) + len(shared))
    table, body, where = [], b"", {}
    for signature, data in tags:
        where[signature] = (offset + len(body), len(data))
        table.append(signature + struct.pack(">II", *where[signature]))
        body += pad4(data)
    table += [signature + struct.pack(">II", *where[same]) for signature, same in shared]
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + bytes(4) + bytes([2, 0x10, 0, 0]) + b"mntr" + b"RGB " + b"XYZ "
        + struct.pack(">6H", 2025, 1, 1, 0, 0, 0) + b"acsp" + bytes(4) + bytes(4) + bytes(8) + bytes(8)
        + struct.pack(">I", 0) + s15f16(D50) + bytes(4) + bytes(16) + bytes(28)
    )
    assert len(header) == 128
    return header + struct.pack(">I", len(table)) + b"".join(table) + body


if __name__ == "__main__":
    PATH.write_bytes(profile())
    print(f"wrote {PATH} ({PATH.stat().st_size} bytes)")
