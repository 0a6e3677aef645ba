#!/usr/bin/env bash
# Set up, then run the whole test suite (a few minutes on 2 CPU cores; no GPU needed).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
exec .venv/bin/python -m pytest -q "$@"
