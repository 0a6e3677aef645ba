# Sourced by scripts/deepzoom_screenshot.sh and scripts/serve_screenshot.sh (arguments FILE.shc OUT.png): sets
# $shc_file and $out (absolute paths), moves to the repository root ($repo), makes a temporary folder $work
# (removed on exit) and installs into it headless Chromium (the npm package @sparticuz/chromium, a build that
# runs without a system browser) and puppeteer-core, with screenshot.mjs next to them.
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 FILE.shc OUT.png" >&2; exit 1; }
shc_file=$(realpath "$1")
out=$(realpath -m "$2")
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
repo=$PWD
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm install --silent --no-audit --no-fund @sparticuz/chromium@153 puppeteer-core >/dev/null)
cp "$repo/scripts/deepzoom/screenshot.mjs" "$work/"
