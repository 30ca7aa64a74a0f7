#!/usr/bin/env bash
# Prints the environment that builds imet against another libtorch than
# Debian's: a CUDA build of libtorch, or the one inside a PyTorch wheel.
#   eval "$(scripts/torchenv.sh /path/to/libtorch)"               # unpacked libtorch zip
#   eval "$(scripts/torchenv.sh "$(python -c 'import torch,os;print(os.path.dirname(torch.__file__))')")"
#   go build ./cmd/imet && go test ./internal/engine/torch/
# It sets GOFLAGS=-tags=customtorch (which drops the Debian defaults in
# internal/engine/torch/shim/flags_debian.go) and CGO_CXXFLAGS / CGO_LDFLAGS.
set -euo pipefail
dir="${1:?usage: torchenv.sh <libtorch dir containing include/ and lib/>}"
dir="$(cd "$dir" && pwd)"
[ -d "$dir/include/torch/csrc/api/include" ] && [ -d "$dir/lib" ] || {
  echo "torchenv: $dir has no include/torch/csrc/api/include and lib/" >&2; exit 1; }
abi=""
# Wheels built with the pre-C++11 std::string ABI need the matching define.
if command -v nm >/dev/null && [ -f "$dir/lib/libc10.so" ] &&
   [ "$(nm -D "$dir/lib/libc10.so" | grep -c '__cxx11' || true)" = 0 ]; then
  abi=" -D_GLIBCXX_USE_CXX11_ABI=0"
fi
libs="-ltorch -ltorch_cpu -lc10"
if [ -f "$dir/lib/libtorch_cuda.so" ]; then
  # Nothing references torch_cuda directly; without --no-as-needed the
  # linker drops it and CUDA never registers.
  libs="-Wl,--no-as-needed -ltorch_cuda -lc10_cuda -Wl,--as-needed $libs"
fi
echo "export GOFLAGS='-tags=customtorch'"
echo "export CGO_CXXFLAGS='-I$dir/include -I$dir/include/torch/csrc/api/include$abi'"
echo "export CGO_LDFLAGS='-L$dir/lib -Wl,-rpath,$dir/lib $libs'"
