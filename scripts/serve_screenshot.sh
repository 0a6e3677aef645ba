#!/usr/bin/env bash
# Checks `shc serve` in headless Chromium and saves a screenshot: starts the server on a free port, loads its
# page, waits until OpenSeadragon has drawn every tile of the first screen (each rendered on request), saves
# the screenshot, prints the time to that first full screen, and stops the server. Chromium and
# puppeteer-core come from npm (scripts/deepzoom/browser.sh), installed before the server starts.
#   scripts/serve_screenshot.sh FILE.shc OUT.png      (needs node, npm and the npm registry)
source "$(dirname "$0")/deepzoom/browser.sh"
: >"$work/serve.log"
.venv/bin/shc serve "$shc_file" --port 0 --verbose >"$work/serve.log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
url=""
for _ in $(seq 300); do
  url=$(grep -o 'http://[^ ]*' "$work/serve.log" || true)
  [ -n "$url" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$work/serve.log" >&2; exit 1; }
  sleep 0.1
done
[ -n "$url" ] || { echo "shc serve did not start within 30 s" >&2; cat "$work/serve.log" >&2; exit 1; }
(cd "$work" && node screenshot.mjs "$url" "$out")
# the server's side (--verbose: a line per request, ending in its milliseconds)
awk '/image_files/ { n += 1; ms += $(NF - 1); if ($(NF - 1) > max) max = $(NF - 1) }
     END { printf "server: %d tile requests, %d ms in all (rendered, or from the cache), the slowest %d ms\n", n, ms, max }' \
  "$work/serve.log"
echo "screenshot of $url ($(basename "$shc_file")) -> $out"
