#!/usr/bin/env bash
# The training quality benchmark: imet and the PyTorch script of the same
# recipe, one after the other on the same machine.
#   bench/training/run.sh [short]
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -x bin/imet ] || go build -o bin/imet ./cmd/imet
[ -d out/emoji ] || bin/imet datasets emoji --out out/emoji
if [ "${1:-}" = short ]; then cfg=bench/training/emoji-resnet18-short.yaml; pyargs="1 3 1200"
else cfg=bench/training/emoji-resnet18.yaml; pyargs="2 10"; fi
dir=out/bench-train-$(basename "$cfg" .yaml)
rm -rf "$dir"
start=$(date +%s.%N)
bin/imet train --config "$cfg" --fold 0 --run-dir "$dir" 2>"$dir.log"
end=$(date +%s.%N)
grep -E "event=validate" "$dir.log" || true
grep -E "event=step" "$dir.log" | tail -1 || true
echo "imet wall_s=$(python3 -c "print(round($end - $start, 1))")"
/usr/bin/python3 bench/training/emoji_pytorch.py out/emoji $pyargs
