#!/usr/bin/env bash
# The GPU check, in one go, on a machine with an NVIDIA GPU, a C++ compiler
# and a PyTorch install, but no Go and no network (docs/benchmarks.md, GPU).
#
# Here, first:   make gpu-pack      # bin/imet, bin/bench-engine, their non-torch libraries in bin/lib
# Then there:    bash scripts/gpu-check.sh [OUT]      (carry bin/ and .cache/npm/node_modules/nsfwjs,
#                the demo's pretrained MobileNetV2, 3.5 MB; the rest is tracked files)
#
# It builds the shim against that machine's torch (the one `python3 -c
# 'import torch'` finds), checks CUDA logits and gradients of resnet50 and
# se_resnext50_32x4d against Python PyTorch on the same GPU with the same
# weights, times training and inference side by side with Python on the same
# model, batch and precision (resnet50 at 224, batch 64, fp32/bf16/fp16;
# se_resnext50_32x4d at 320 in bf16), runs the demo on the GPU, samples GPU
# utilisation throughout, and writes OUT/gpu-check.json and OUT/gpu-check.log.
# GPU_CHECK_DEVICE=cpu runs the same steps on the CPU (a dry run anywhere).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${1:-out/gpu-check}"
PY="${PYTHON:-python3}"
DEV="${GPU_CHECK_DEVICE:-cuda}"
STEPS="${GPU_CHECK_STEPS:-20}"
mkdir -p "$OUT"
log="$OUT/gpu-check.log"
: > "$log"
say() { echo "gpu-check: $*" | tee -a "$log" >&2; }
step() { # name, command...: runs it, logs it, records its exit status
  local name=$1; shift
  say "== $name: $*"
  local t0=$SECONDS
  "$@" >> "$log" 2>&1
  local rc=$?
  echo "$name $rc $((SECONDS - t0))" >> "$OUT/steps.txt"
  say "   $name: exit $rc in $((SECONDS - t0)) s"
  return $rc
}
: > "$OUT/steps.txt"
[ -x bin/imet ] && [ -x bin/bench-engine ] || { say "bin/imet and bin/bench-engine missing: run 'make gpu-pack' where Go is, and carry bin/"; exit 1; }

step shim scripts/build-shim.sh python "$OUT/shim" || { say "the shim does not build against this torch; stopping"; exit 1; }
export IMET_TORCH="$OUT/shim"
bin/imet version --json --check > "$OUT/version.json" 2>> "$log"
cat "$OUT/version.json" >> "$log"

util_pid=""
if command -v nvidia-smi >/dev/null; then
  nvidia-smi --query-gpu=timestamp,name,utilization.gpu,memory.used --format=csv,noheader,nounits -lms 500 > "$OUT/utilisation.csv" 2>/dev/null &
  util_pid=$!
  nvidia-smi >> "$log" 2>&1
fi

for arch in resnet50 se_resnext50_32x4d; do
  step "parity-ref-$arch" "$PY" bench/engine/parity.py "$arch" "$DEV" "$OUT/parity/$arch" &&
    step "parity-$arch" sh -c "bin/bench-engine -model $arch -device $DEV -parity '$OUT/parity/$arch' > '$OUT/parity-$arch.json'"
  rm -f "$OUT/parity/$arch/weights.pth"
done

step bench-resnet50 sh -c "bin/bench-engine -python '$PY' -device $DEV -models resnet50 -modes train,infer -variants fp32,bf16,fp16 -batch 64 -size 224 -steps $STEPS > '$OUT/bench-resnet50.md'"
step bench-se_resnext50 sh -c "bin/bench-engine -python '$PY' -device $DEV -models se_resnext50_32x4d -modes train,infer -variants bf16 -batch 32 -size 320 -steps $STEPS > '$OUT/bench-se_resnext50.md'"
step demo bin/imet demo --out "$OUT/demo" --device "$DEV"

[ -z "$util_pid" ] || kill "$util_pid" 2>/dev/null
"$PY" - "$OUT" <<'PYEOF'
import json, os, sys, glob
out = sys.argv[1]
res = {"steps": {}, "parity": {}, "bench": {}}
for line in open(os.path.join(out, "steps.txt")):
    name, rc, secs = line.split()
    res["steps"][name] = {"exit": int(rc), "seconds": int(secs)}
try:
    res["version"] = json.load(open(os.path.join(out, "version.json")))
except Exception as e:
    res["version"] = str(e)
for p in glob.glob(os.path.join(out, "parity-*.json")):
    try:
        res["parity"][os.path.basename(p)[7:-5]] = json.loads(open(p).read().strip().splitlines()[-1])
    except Exception as e:
        res["parity"][p] = str(e)
for p in glob.glob(os.path.join(out, "bench-*.md")):
    res["bench"][os.path.basename(p)[6:-3]] = open(p).read()
u = os.path.join(out, "utilisation.csv")
if os.path.exists(u):
    vals = [float(l.split(",")[2]) for l in open(u) if l.count(",") >= 3 and l.split(",")[2].strip().replace(".", "").isdigit()]
    if vals:
        res["gpu_utilisation"] = {"samples": len(vals), "mean": sum(vals) / len(vals), "max": max(vals)}
json.dump(res, open(os.path.join(out, "gpu-check.json"), "w"), indent=2)
print(json.dumps({k: v for k, v in res.items() if k != "bench"}, indent=2))
for k, v in res["bench"].items():
    print(v)
PYEOF
