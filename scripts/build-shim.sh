#!/usr/bin/env bash
# Builds libimettorch.so, imet's only C++, against a libtorch, with nothing
# but a C++ compiler (no Go). The imet binary links no libtorch: it loads the
# shim at run time from $IMET_TORCH (a directory or the file), from lib/
# beside the executable (bundles, bin/), or from the default build in bin/lib.
#
#   scripts/build-shim.sh                       # Debian's libtorch-dev -> bin/lib
#   scripts/build-shim.sh /opt/libtorch OUT     # an unpacked libtorch zip
#   scripts/build-shim.sh python OUT            # the torch/ of `python3 -c 'import torch'`
#   scripts/build-shim.sh /path/site-packages/torch OUT
#   IMET_TORCH=OUT bin/imet version             # then use it
#
# It detects the C++ ABI the libtorch was built with and CUDA (libtorch_cuda
# present: linked with --no-as-needed, since nothing references it directly
# and its operators register from static constructors). Environment: CXX
# (default c++), PYTHON (default python3), CUDA_HOME (CUDA headers, for
# device names; default /usr/local/cuda), NCCL_HOME (nccl.h, for multi-GPU
# data parallelism, also looked for under CUDA_HOME and a wheel's nvidia/).
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
src="$root/internal/engine/torch/shim"
torch="${1:-debian}"
out="${2:-$root/bin/lib}"
CXX="${CXX:-c++}"

if [ "$torch" = python ]; then
  torch="$("${PYTHON:-python3}" -c 'import os, torch; print(os.path.dirname(torch.__file__))')"
fi
if [ "$torch" = debian ] || [ "$torch" = /usr ]; then
  inc=(/usr/include /usr/include/torch/csrc/api/include)
  lib=/usr/lib/x86_64-linux-gnu
  [ -f /usr/include/torch/csrc/api/include/torch/torch.h ] || {
    echo "build-shim: Debian's libtorch-dev is not installed (scripts/deps.sh installs it)" >&2; exit 1; }
else
  torch="$(cd "$torch" && pwd)"
  inc=("$torch/include" "$torch/include/torch/csrc/api/include")
  lib="$torch/lib"
  [ -f "$torch/include/torch/csrc/api/include/torch/torch.h" ] && [ -d "$lib" ] || {
    echo "build-shim: $torch has no include/torch/csrc/api/include and lib/ (want a libtorch zip or a wheel's torch/)" >&2; exit 1; }
fi
c10="$(ls "$lib"/libc10.so* 2>/dev/null | head -n1 || true)"
[ -n "$c10" ] || { echo "build-shim: no libc10.so in $lib" >&2; exit 1; }

flags=(-std=c++17 -O2 -fPIC -shared -Wno-deprecated-declarations -Wl,-Bsymbolic -Wl,--no-undefined)
# Wheels built with the pre-C++11 std::string ABI need the matching define.
abi=1
if command -v nm >/dev/null && [ "$(nm -D "$c10" | grep -c '__cxx11' || true)" = 0 ]; then abi=0; fi
flags+=(-D_GLIBCXX_USE_CXX11_ABI=$abi)
libs=(-ltorch -ltorch_cpu -lc10)
cuda=no
nccl=no
if ls "$lib"/libtorch_cuda.so* >/dev/null 2>&1; then
  cuda=yes
  libs=(-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed "${libs[@]}")
  for d in "${CUDA_HOME:-/usr/local/cuda}/include" "$torch/../nvidia/cuda_runtime/include"; do
    if [ -f "$d/cuda_runtime_api.h" ]; then flags+=(-DIMET_WITH_CUDA "-I$d"); break; fi
  done
  # NCCL for multi-GPU data parallelism (ProcessGroupNCCL, in libtorch_cuda).
  for d in "${NCCL_HOME:-/usr/local/nccl}/include" "${CUDA_HOME:-/usr/local/cuda}/include" "$torch/../nvidia/nccl/include" /usr/include; do
    if [ -f "$d/nccl.h" ]; then flags+=(-DIMET_WITH_NCCL "-I$d"); nccl=yes; break; fi
  done
fi
# Gloo's headers (c10d's CPU backend); without them the shim builds with no
# distributed training. Wheels and libtorch zips carry them in include/.
gloo=no
for d in "${inc[@]}"; do [ -f "$d/gloo/context.h" ] && gloo=yes; done
for d in "${inc[@]}"; do flags+=("-I$d"); done

mkdir -p "$out"
tmp="$out/.libimettorch.so.tmp-$$"
trap 'rm -f "$tmp"' EXIT
"$CXX" "${flags[@]}" -o "$tmp" "$src/shim.cpp" -L"$lib" -Wl,-rpath,"$lib" "${libs[@]}" -lstdc++
mv -f "$tmp" "$out/libimettorch.so"
echo "build-shim: $out/libimettorch.so (libtorch in $lib, C++11 ABI $abi, CUDA $cuda, Gloo $gloo, NCCL $nccl)" >&2
