#!/usr/bin/env bash
# The multi-pass loops of issue 14 against the plain cv they start from
# (docs/benchmarks.md, ## Multi-pass loops): on the synthetic sample, for
# each seed, round 1 is bench/plan/recipe.yaml's cv (ResNet-18, random
# initialisation, 32 px, 4 epochs, 3 folds); each technique is one more cv
# of the same recipe and seed built from round 1's outputs:
#   clean     targets.train_csv from imet labels clean (drop the 10 % of
#             rows of largest OOF BCE)
#   relabel   the same 10 % relabelled instead (labels with OOF p >= 0.9
#             added, p <= 0.1 removed)
#   distill   targets.soft from round 1's oof.npy, max(y, 0.7 p)
#   pseudo    targets.pseudo from round 1's test.npy, the 50 % most
#             confident test images with their probabilities as targets
#   specialist a tag-only cv (data.labels: [tag]) merged over round 1
#             (imet merge --mode replace), thresholds and submission
#             searched again on the merged OOF
# Every submission is scored on the sample's clean test labels by
# bench/quality/score.py.
#   bench/loops/run.sh [SEEDS...]   (default 1 2 3)
#   SET=emoji EPOCHS=3 bench/loops/run.sh 1   (the emoji set, imet datasets
#   emoji, its 5 folds by base emoji; same recipe at 32 px)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-1099511627776}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-268435456}
go build -o bin/imet ./cmd/imet
set=${SET:-synth}
root=out/bench-loops/$set
data=$root/data
if [ "$set" = emoji ]; then
  data=out/emoji
  [ -f $data/folds.csv ] || bin/imet -q datasets emoji --out $data
elif [ ! -f $data/folds.csv ]; then
  bin/imet -q datasets synth --out $data --train 300 --test 150 --cultures 4 --tags 8 --overwrite
  bin/imet -q folds --data $data --k 3 --out $data/folds.csv
fi
score() { $py bench/quality/score.py $data/test_labels.csv "$1"; }
cv() { # cv OUT CONFIG
  bin/imet cv --config "$2" --out "$1" --rules global,group --no-registry >>"$1.log" 2>&1 || { tail -20 "$1.log"; exit 1; }
}
seeds=${*:-1 2 3}
printf '%-5s %-9s %-9s %-9s %-9s %-9s %-10s %s\n' seed baseline clean relabel distill pseudo specialist seconds
for seed in $seeds; do
  out=$root/seed$seed
  mkdir -p $out
  sed -e "s|^seed: .*|seed: $seed|" -e "s|DATA|$data|" -e "s|^    epochs: .*|    epochs: ${EPOCHS:-4}|" bench/plan/recipe.yaml >$out/recipe.yaml
  t0=$(date +%s)
  cv $out/r1 $out/recipe.yaml
  base=$(score $out/r1/submission.csv)
  bin/imet -q labels clean --data $data --oof $out/r1/oof.npy --share 0.1 --out $out/clean.csv
  bin/imet -q labels clean --data $data --oof $out/r1/oof.npy --share 0.1 --action relabel --out $out/relabel.csv
  { cat $out/recipe.yaml; printf 'targets:\n  train_csv: %s\n' $out/clean.csv; } >$out/clean.yaml
  { cat $out/recipe.yaml; printf 'targets:\n  train_csv: %s\n' $out/relabel.csv; } >$out/relabel.yaml
  { cat $out/recipe.yaml; printf 'targets:\n  soft: {file: %s, rule: max, alpha: 0.7}\n' $out/r1/oof.npy; } >$out/distill.yaml
  { cat $out/recipe.yaml; printf 'targets:\n  pseudo: {file: %s, share: 0.5}\n' $out/r1/test.npy; } >$out/pseudo.yaml
  sed -e 's|^  workers: 2$|  workers: 2\n  labels: [tag]|' $out/recipe.yaml >$out/tags.yaml
  row=()
  for t in clean relabel distill pseudo; do
    cv $out/$t $out/$t.yaml
    row+=("$(score $out/$t/submission.csv)")
  done
  cv $out/tags $out/tags.yaml
  for s in oof test; do
    bin/imet -q merge --labels $data/labels.csv --base $out/r1/$s.npy --out $out/merged-$s.npy $out/tags/$s.npy
  done
  bin/imet -q thresholds --oof $out/merged-oof.npy --truth $data/train.csv --labels $data/labels.csv --rules global,group --folds $data/folds.csv --out $out/merged-thresholds.json
  bin/imet -q submit --probs $out/merged-test.npy --thresholds $out/merged-thresholds.json --labels $data/labels.csv --out $out/merged-submission.csv
  row+=("$(score $out/merged-submission.csv)")
  printf '%-5s %-9s %-9s %-9s %-9s %-9s %-10s %s\n' $seed $base "${row[0]}" "${row[1]}" "${row[2]}" "${row[3]}" "${row[4]}" $(( $(date +%s) - t0 ))
done
