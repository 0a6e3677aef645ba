#!/usr/bin/env bash
# Checks a `shc tiles` page in headless Chromium and saves a screenshot: the page must load OpenSeadragon and
# its tiles from disk (file://, offline). Chromium comes from the npm package @sparticuz/chromium (a headless
# build that runs without a system browser), driven by puppeteer-core; both installed into a temporary folder.
#   scripts/deepzoom_screenshot.sh FILE.shc OUT.png      (needs node, npm and the npm registry)
set -euo pipefail
shc_file=$(realpath "$1")
out=$(realpath -m "$2")
cd "$(dirname "$0")/.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
.venv/bin/shc tiles "$shc_file" -o "$work/tiles"
(cd "$work" && npm install --silent --no-audit --no-fund @sparticuz/chromium@153 puppeteer-core >/dev/null)
cp "$repo/scripts/deepzoom/screenshot.mjs" "$work/"
(cd "$work" && node screenshot.mjs "file://$work/tiles/index.html" "$out")
echo "screenshot of $work/tiles/index.html -> $out"
