#!/usr/bin/env bash
# Fetches the offline assets some tests and benchmarks use, by pinned package
# name, into .cache/npm (ignored by git; never commit their files):
#   nsfwjs@4.4.0                  Keras MobileNetV2 started from ImageNet (tfjs)
#   emoji-datasource-google@16.0.0 real multi-label artwork (64x64 PNGs)
#   emojibase-data@17.0.0         tags for those emoji
# Tests find them through IMET_ASSETS (default: <repo>/.cache/npm/node_modules)
# and skip, saying why, when they are absent and npm is unavailable.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
dest="$root/.cache/npm"
want=(nsfwjs@4.4.0 emoji-datasource-google@16.0.0 emojibase-data@17.0.0)
have=1
for p in "${want[@]}"; do
  name=${p%@*}; ver=${p##*@}
  f="$dest/node_modules/$name/package.json"
  [ -f "$f" ] && grep -q "\"version\": \"$ver\"" "$f" || have=0
done
[ $have -eq 1 ] && exit 0
command -v npm >/dev/null || { echo "assets: npm not found; tests that need real weights or emoji will skip" >&2; exit 0; }
mkdir -p "$dest"
echo "assets: npm install ${want[*]}" >&2
npm install --no-audit --no-fund --ignore-scripts --prefix "$dest" "${want[@]}" >/dev/null
