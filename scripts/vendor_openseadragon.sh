#!/usr/bin/env bash
# Refreshes src/shc/viewer/openseadragon/ (package data that `shc tiles` copies next to its Deep Zoom
# pyramid, so the viewer page works offline) from OpenSeadragon's npm package: the minified script, its
# button images and its licence (BSD-3-Clause).
#   scripts/vendor_openseadragon.sh [VERSION]      (default 6.1.1; needs npm and the npm registry)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-6.1.1}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
(cd "$work" && npm pack --silent "openseadragon@$version" >/dev/null && tar xzf openseadragon-*.tgz)
dest=src/shc/viewer/openseadragon
rm -rf "$dest"
mkdir -p "$dest/images"
cp "$work/package/build/openseadragon/openseadragon.min.js" "$dest/"
cp "$work/package/build/openseadragon/images/"*.png "$dest/images/"
cp "$work/package/LICENSE.txt" "$dest/LICENSE.txt"
echo "$version" > "$dest/VERSION"
echo "OpenSeadragon $version -> $dest"
