# The two commands a newcomer needs (see README.md):
#   make demo   runs the main job on the embedded sample data
#   make test   runs the whole test suite (what CI runs)
GO ?= go
# glibc malloc settings measured to cut page faults 3-10x under libtorch.
export MALLOC_MMAP_MAX_ ?= 0
export MALLOC_TRIM_THRESHOLD_ ?= 1099511627776
export MALLOC_TOP_PAD_ ?= 268435456
# libgomp threads must not spin while the image loader needs the cores
# (internal/base/procenv; imet sets these itself, the tests get them here).
export OMP_WAIT_POLICY ?= PASSIVE
# Tests keep screenshots and figures here for CI to collect (docs/registry.md).
export IMET_ARTIFACTS ?= $(CURDIR)/out/artifacts

# The revision the registry records for every run (internal/base/buildinfo),
# stamped here because builds with GOFLAGS=-buildvcs=false embed no VCS data.
REVISION ?= $(shell git describe --always --dirty 2>/dev/null)

# The run path lets `imet export` ship the binary with its libraries in lib/
# (internal/ship/bundle.BuildFlag).
.PHONY: demo test build deps vet shim gpu-pack fuzz-short

SHIM := bin/lib/libimettorch.so
SHIM_SRC := internal/engine/torch/shim/shim.cpp internal/engine/torch/shim/shim.h scripts/build-shim.sh

deps:
	@scripts/deps.sh
	@scripts/assets.sh

# The only C++: the binary loads it at run time (IMET_TORCH points at another
# build; scripts/build-shim.sh builds one against any libtorch).
$(SHIM): $(SHIM_SRC)
	scripts/build-shim.sh debian bin/lib

shim: deps $(SHIM)

build: shim
	$(GO) build -ldflags='-X imet/internal/base/buildinfo.Revision=$(REVISION) -extldflags "-Wl,--disable-new-dtags,-rpath,$$ORIGIN/lib"' -o bin/imet ./cmd/imet

# What the GPU check carries to a machine without Go (scripts/gpu-check.sh):
# the two programs, stripped, with the non-torch libraries they load.
gpu-pack: build
	$(GO) build -ldflags='-s -w -X imet/internal/base/buildinfo.Revision=$(REVISION) -extldflags "-Wl,--disable-new-dtags,-rpath,$$ORIGIN/lib"' -o bin/imet ./cmd/imet
	$(GO) build -ldflags='-s -w -extldflags "-Wl,--disable-new-dtags,-rpath,$$ORIGIN/lib"' -o bin/bench-engine ./bench/engine
	for l in $$(readelf -d bin/imet | sed -n 's/.*Shared library: \[\(.*\)\]/\1/p' | grep -v '^lib[cm]\.so\|^ld-'); do \
		cp -L /usr/lib/x86_64-linux-gnu/$$l bin/lib/; done
	@du -sh bin

demo: build
	bin/imet demo --out out/demo

test: shim
	$(GO) vet ./...
	$(GO) test -timeout 25m ./...

# Every fuzz target for FUZZTIME (default 10s) each: the readers of user
# files (YAML configuration and pipelines, train/labels/folds CSV, .npy,
# checkpoints, weight files, bundle manifests) must refuse, never crash.
fuzz-short: shim
	scripts/fuzz-short.sh
