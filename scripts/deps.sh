#!/usr/bin/env bash
# Installs the system packages imet builds and tests against, only those that
# are missing, so a second run costs nothing. Debian/Ubuntu (apt) only.
#   libtorch-dev            the deep-learning engine (PyTorch's C++ core)
#   libgloo-dev             the headers of Gloo, c10d's CPU backend for
#                           data-parallel training (the library comes with libtorch)
#   libopenblas0-pthread    a real BLAS under libtorch's linear layers
#   libturbojpeg0-dev       fast JPEG decoding
#   libpng-dev              fast PNG decoding (C zlib)
#   python3-torch/-vision   the independent reference for parity tests
#   python3-sklearn/-numpy  golden values for scoring tests, NumPy baseline
#   python3-pil             the Python image stack the loader is compared with
#   chromium                renders the dashboard in its browser test
#   libxgboost-dev          XGBoost's C API, the booster of `imet stack`
#                           (opened at run time: other commands run without it)
#   python3-xgboost         the reference the Go booster is checked against
#   patchelf                gives a bundled binary its $ORIGIN/lib run path
#                           when it was not linked with one (internal/ship/bundle)
set -euo pipefail
pkgs=(libtorch-dev libgloo-dev libopenblas0-pthread libturbojpeg0-dev libpng-dev
      python3-torch python3-torchvision python3-sklearn python3-numpy python3-pil
      chromium patchelf libxgboost-dev python3-xgboost)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v go >/dev/null || { echo "deps: Go 1.26 or newer is required (https://go.dev/dl)" >&2; exit 1; }
