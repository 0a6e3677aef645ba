#!/usr/bin/env bash
# Checks a `shc tiles` page in headless Chromium and saves a screenshot: the page must load OpenSeadragon and
# its tiles from disk (file://, offline); prints the time until the first screen is fully drawn. Chromium and
# puppeteer-core come from npm (scripts/deepzoom/browser.sh).
#   scripts/deepzoom_screenshot.sh FILE.shc OUT.png      (needs node, npm and the npm registry)
source "$(dirname "$0")/deepzoom/browser.sh"
.venv/bin/shc tiles "$shc_file" -o "$work/tiles"
(cd "$work" && node screenshot.mjs "file://$work/tiles/index.html" "$out")
echo "screenshot of $work/tiles/index.html -> $out"
