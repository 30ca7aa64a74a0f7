#!/usr/bin/env bash
# The quality benchmark (docs/benchmarks.md, ## Quality (emoji)): the recipe
# bench/quality/emoji-resnet18.yaml trained by `imet cv` on fold 0 and by
# the PyTorch script of the same recipe, back to back on this machine, with
# the same environment; then both submissions scored on the held-out test
# emoji by the same scorer.
#   bench/quality/run.sh [EPOCHS [SEED]]   (defaults: the recipe's 4 and 1)
# Prints each stack's F2 (validation, out-of-fold after TTA, test) and wall
# time, and the ratios imet/PyTorch.
set -euo pipefail
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
epochs=${1:-4}
seed=${2:-1}
# Both stacks' libtorch uses GNU OpenMP. Its default busy-waiting makes two
# intra-op threads ~5x slower when the cores are shared with other work (see
# docs/benchmarks.md); imet sets these itself (internal/base/procenv), the
# PyTorch script gets them here so both run in the same environment.
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
# glibc malloc settings the Makefile uses for libtorch.
export MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-1099511627776}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-268435456}

# Always rebuild (incremental, seconds when nothing changed): a stale
# binary would time old code. Same flags as `make build`.
go build -ldflags='-extldflags "-Wl,--disable-new-dtags,-rpath,$ORIGIN/lib"' -o bin/imet ./cmd/imet
[ -f out/emoji/folds.csv ] || bin/imet datasets emoji --out out/emoji
out=out/bench-quality/seed$seed
rm -rf "$out" && mkdir -p "$out"
cfg=$out/recipe.yaml
sed -e "s/^    epochs: .*/    epochs: $epochs/" -e "s/^seed: .*/seed: $seed/" bench/quality/emoji-resnet18.yaml >"$cfg"

now() { date +%s.%N; }
load() { cut -d' ' -f1-3 /proc/loadavg; }
echo "machine: $(nproc) cores, load before: $(load)"

t0=$(now)
bin/imet cv --config "$cfg" --folds 0 --rules global --out "$out/imet" >"$out/imet.log" 2>&1 || { tail -20 "$out/imet.log"; exit 1; }
t1=$(now)
echo "imet done, load: $(load)"
$py bench/quality/emoji_pytorch.py out/emoji "$out/pytorch" "$epochs" 2 "$seed" >"$out/pytorch.log" 2>&1 || { tail -20 "$out/pytorch.log"; exit 1; }
t2=$(now)
echo "pytorch done, load: $(load)"

grep -E "event=validate|event=thresholds" "$out/imet.log" | sed 's/^/imet: /'
grep -E "^pytorch epoch" "$out/pytorch.log"
imet_val=$(grep -o 'best_f2=[0-9.]*' "$out/imet.log" | tail -1 | cut -d= -f2)
imet_oof=$(grep -o 'event=thresholds rule=global f2=[0-9.]*' "$out/imet.log" | tail -1 | sed 's/.*f2=//')
imet_test=$($py bench/quality/score.py out/emoji/test_labels.csv "$out/imet/submission.csv")
py_val=$(grep -o 'best_val_f2=[0-9.]*' "$out/pytorch.log" | cut -d= -f2)
py_oof=$(grep -o 'oof_f2=[0-9.]*' "$out/pytorch.log" | cut -d= -f2)
py_test=$($py bench/quality/score.py out/emoji/test_labels.csv "$out/pytorch/submission.csv")
$py - "$t0" "$t1" "$t2" "$imet_val" "$imet_oof" "$imet_test" "$py_val" "$py_oof" "$py_test" <<'PY'
import sys
t0, t1, t2, iv, io, it, pv, po, pt = map(float, sys.argv[1:])
wi, wp = t1 - t0, t2 - t1
print(f"{'':8}{'val F2':>8}{'OOF F2':>8}{'test F2':>9}{'wall s':>8}")
print(f"{'imet':8}{iv:8.4f}{io:8.4f}{it:9.4f}{wi:8.1f}")
print(f"{'pytorch':8}{pv:8.4f}{po:8.4f}{pt:9.4f}{wp:8.1f}")
print(f"imet/pytorch: test F2 {it / pt:.3f}, OOF F2 {io / po:.3f}, wall {wi / wp:.3f}")
PY
echo "load after: $(load)"
