#!/usr/bin/env bash
# Stacking (imet stack) and nearest-neighbour label transfer (imet knn)
# against the plain cv baseline on the synthetic sample, one seed per call:
#   bench/postprocess/run.sh SEED [TRAIN TEST]      # defaults 600 and 200 images
# The seed chooses the data set, the folds and the training. Every variant
# searches one global threshold on its OOF (imet thresholds --rules global)
# and is scored on the test images' true labels (bench/quality/score.py).
# Prints one line: seed, baseline, stack, knn test F2, then the knn blend.
set -euo pipefail
seed="${1:?seed}"; ntrain="${2:-600}"; ntest="${3:-200}"
root="$(cd "$(dirname "$0")/../.." && pwd)"
out="$root/out/bench-postprocess/seed$seed"
imet="$root/bin/imet"
export OMP_WAIT_POLICY=PASSIVE MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1099511627776 MALLOC_TOP_PAD_=268435456
rm -rf "$out"; mkdir -p "$out"
data="$out/data"
"$imet" -q datasets synth --out "$data" --seed "$seed" --train "$ntrain" --test "$ntest"
"$imet" -q folds --data "$data" --k 3 --seed "$seed" --out "$data/folds.csv"
sed -e "s|DATA|$data|; s|PIPES|$root/bench/postprocess/pipelines.yaml|; s|^seed: 1|seed: $seed|" \
  "$root/bench/postprocess/synth.yaml" >"$out/run.yaml"
"$imet" -q cv --config "$out/run.yaml" --out "$out/cv" --rules global >"$out/cv.log" 2>&1
L=(--truth "$data/train.csv" --labels "$data/labels.csv")
score() { # name oof test
  "$imet" -q thresholds --oof "$2" "${L[@]}" --rules global --out "$out/$1.thresholds.json"
  "$imet" -q submit --probs "$3" --thresholds "$out/$1.thresholds.json" --labels "$data/labels.csv" \
    --sample "$data/sample_submission.csv" --out "$out/$1.csv"
  /usr/bin/python3 "$root/bench/quality/score.py" "$data/test_labels.csv" "$out/$1.csv"
}
base=$(score base "$out/cv/oof.npy" "$out/cv/test.npy")
"$imet" stack --oof "$out/cv/oof.npy" --test "$out/cv/test.npy" "${L[@]}" --folds "$data/folds.csv" \
  --out-oof "$out/stack_oof.npy" --out-test "$out/stack_test.npy" --threads 2 >"$out/stack.log"
stack=$(score stack "$out/stack_oof.npy" "$out/stack_test.npy")
tr=(); te=()
for k in 0 1 2; do
  "$imet" -q predict --from "$out/cv/fold$k" --images "$data/train" --out "$out/e.csv" --embeddings "$out/emb_train$k.npy" --tta none >/dev/null
  "$imet" -q predict --from "$out/cv/fold$k" --images "$data/test" --out "$out/e.csv" --embeddings "$out/emb_test$k.npy" --tta none >/dev/null
  tr+=("$out/emb_train$k.npy"); te+=("$out/emb_test$k.npy")
done
join() { local IFS=,; echo "$*"; }
"$imet" knn --oof "$out/cv/oof.npy" --test "$out/cv/test.npy" --train-emb "$(join "${tr[@]}")" --test-emb "$(join "${te[@]}")" \
  "${L[@]}" --folds "$data/folds.csv" --out-oof "$out/knn_oof.npy" --out-test "$out/knn_test.npy" --threads 2 >"$out/knn.log"
knn=$(score knn "$out/knn_oof.npy" "$out/knn_test.npy")
echo "seed $seed base $base stack $stack knn $knn | $(tail -1 "$out/knn.log")"
