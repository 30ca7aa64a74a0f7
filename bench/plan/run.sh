#!/usr/bin/env bash
# Ensemble plans against their parts (docs/benchmarks.md, ## Ensemble plans):
# on the synthetic sample, for each seed, two cross-validations of the same
# recipe (ResNet-18 and MobileNet-V2 from random initialisation, 32 px) are
# trained once by `imet cv --plan`, then combined by the mean, rank and
# weighted methods (the same --out: the parts' folds are found done and only
# the combination is redone). Every submission is scored on the clean test
# labels by bench/quality/score.py.
#   [ARCH2=resnet34] bench/plan/run.sh [SEEDS...]   (defaults: mobilenet_v2; 1 2 3)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=/usr/bin/python3
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-PASSIVE}
export MALLOC_MMAP_MAX_=${MALLOC_MMAP_MAX_:-0}
export MALLOC_TRIM_THRESHOLD_=${MALLOC_TRIM_THRESHOLD_:-1099511627776}
export MALLOC_TOP_PAD_=${MALLOC_TOP_PAD_:-268435456}
go build -o bin/imet ./cmd/imet
root=out/bench-plan
data=$root/synth
if [ ! -f $data/folds.csv ]; then
  bin/imet -q datasets synth --out $data --train 300 --test 150 --cultures 4 --tags 8 --overwrite
  bin/imet -q folds --data $data --k 3 --out $data/folds.csv
fi
seeds=${*:-1 2 3}
arch2=${ARCH2:-mobilenet_v2}
printf '%-5s %-9s %-9s %-9s %-9s %-9s %s\n' seed r18 "$arch2" mean rank weighted weights
for seed in $seeds; do
  out=$root/$arch2/seed$seed
  mkdir -p $out
  sed -e "s|^seed: .*|seed: $seed|" -e "s|DATA|$data|" bench/plan/recipe.yaml >$out/recipe.yaml
  row=()
  for m in mean rank weighted; do
    printf 'name: synth-plan\nensemble: %s\nweight_step: 0.1\nparts:\n  - {name: r18, config: %s}\n  - {name: b, config: %s, arch: %s}\n' \
      $m $out/recipe.yaml $out/recipe.yaml $arch2 >$out/plan-$m.yaml
    bin/imet cv --plan $out/plan-$m.yaml --out $out/plan --rules global,group --no-registry >>$out/plan.log 2>&1 || { tail -20 $out/plan.log; exit 1; }
    cp $out/plan/submission.csv $out/submission-$m.csv
    row+=("$($py bench/quality/score.py $data/test_labels.csv $out/submission-$m.csv)")
  done
  r18=$($py bench/quality/score.py $data/test_labels.csv $out/plan/parts/r18/submission.csv)
  b=$($py bench/quality/score.py $data/test_labels.csv $out/plan/parts/b/submission.csv)
  w=$($py -c 'import json,sys; print(json.load(open(sys.argv[1]))["weights"])' $out/plan/plan.json)
  printf '%-5s %-9s %-9s %-9s %-9s %-9s %s\n' $seed $r18 $b "${row[0]}" "${row[1]}" "${row[2]}" "$w"
done
