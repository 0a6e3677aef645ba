#!/usr/bin/env bash
# The decode-only install works: a fresh venv with shc's base dependencies and shc itself (not editable, no
# torch) decodes a golden .shc file bit-exactly, prints its info, opens, thumbnails and loads it through Pillow
# (`import shc.pillow`), never imports torch, and `shc encode` there answers with one line naming shc[encode]
# (exit 2), `im.save("x.shc")` with an OSError naming it. Needs the network for the dependencies; under a minute.
#   scripts/check_decode_only.sh            (venv in ${SHC_NOTORCH_VENV:-/tmp/shc-notorch}, made afresh)
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
PYTHON=${PYTHON:-python3}
venv=${SHC_NOTORCH_VENV:-/tmp/shc-notorch}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

rm -rf "$venv"
"$PYTHON" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check --no-input)
# The base dependencies by name (kept in step with pyproject.toml by `pip check` below, which fails if shc
# requires anything not installed here, torch included).
"${pip[@]}" install -q numpy "constriction==0.5.*" pillow click tqdm threadpoolctl
# shc itself from a copy of the files its build reads, so no build/ or egg-info lands in the checkout.
mkdir "$work/src"
cp pyproject.toml README.md "$work/src/"
"$PYTHON" - "$work/src" <<'PY'
import shutil, sys, tomllib
from pathlib import Path
dest = Path(sys.argv[1])
folders = {Path(f).parts[0] for f in tomllib.loads(Path("pyproject.toml").read_text())["tool"]["setuptools"]["package-dir"].values()}
for folder in sorted(folders):
    shutil.copytree(folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
PY
"${pip[@]}" install -q --no-deps "$work/src"
"${pip[@]}" check
if "$venv/bin/python" -c "import torch" >/dev/null 2>&1; then
    echo "check_decode_only: torch is importable in $venv" >&2
    exit 1
fi

cd "$work"  # away from the checkout: everything below runs the installed shc
export PYTHONNOUSERSITE=1
unset PYTHONPATH
"$venv/bin/shc" decode "$repo/tests/data/parrot_128x96_q3.shc" -o parrot.png
"$venv/bin/shc" info "$repo/tests/data/parrot_128x96_q3.shc"
"$venv/bin/python" - "$venv" "$repo/tests/data/parrot_128x96_q3.decoded.png" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
import shc, shc.format
import shc.cli.main
assert "torch" not in sys.modules, "importing shc, shc.format or the CLI imported torch"
assert Path(shc.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), shc.__file__
decoded, golden = (np.asarray(Image.open(p).convert("RGB")) for p in ("parrot.png", sys.argv[2]))
assert np.array_equal(decoded, golden), "decode differs from the golden decoded PNG"
PY
# The Pillow plugin, still without torch: open reads the header, thumbnail renders small, load decodes, and
# save names shc[encode] (an OSError, as Pillow's own plugins raise).
"$venv/bin/python" - "$repo/tests/data/parrot_128x96_q3.shc" <<'PY'
import sys
from pathlib import Path
import numpy as np
from PIL import Image
import shc, shc.pillow
path = sys.argv[1]
expected = np.asarray(shc.decode(Path(path).read_bytes()))
height, width = expected.shape[:2]
with Image.open(path) as im:
    assert (im.format, im.size) == ("SHC", (width, height)), (im.format, im.size)
    assert im.draft(None, (width // 4, height // 4)) == (im.mode, (0, 0, width // 4, height // 4)), im.size
    im.thumbnail((width // 8, height // 8))  # renders at the draft size above, then Pillow resizes
    assert im.size == (width // 8, height // 8), im.size
with Image.open(path) as im:
    assert np.array_equal(np.asarray(im), expected), "Image.open(...).load() differs from shc.decode"
    try:
        im.save("x.shc")
    except OSError as error:
        assert "shc[encode]" in str(error) and not Path("x.shc").exists(), error
    else:
        raise AssertionError("im.save('x.shc') worked without torch")
assert "torch" not in sys.modules, "the Pillow plugin imported torch"
print("Pillow plugin OK without torch")
PY
set +e
"$venv/bin/shc" encode "$repo/tests/data/parrot_64x48.png" -o x.shc 2>encode.err
status=$?
set -e
if [ "$status" -ne 2 ] || [ "$(wc -l <encode.err)" -ne 1 ] || ! grep -q 'shc\[encode\]' encode.err; then
    echo "check_decode_only: shc encode without torch gave exit $status and:" >&2
    cat encode.err >&2
    exit 1
fi
echo "decode-only install OK: decoded without torch; shc encode says: $(cat encode.err)"
