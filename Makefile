# The two commands a newcomer needs (see README.md):
#   make demo   runs the main job on the embedded sample data
#   make test   runs the whole test suite (what CI runs)
GO ?= go
# glibc malloc settings measured to cut page faults 3-10x under libtorch.
export MALLOC_MMAP_MAX_ ?= 0
export MALLOC_TRIM_THRESHOLD_ ?= 268435456
export MALLOC_TOP_PAD_ ?= 268435456
# libgomp threads must not spin while the image loader needs the cores
# (internal/procenv; imet sets these itself, the tests get them here).
export OMP_WAIT_POLICY ?= PASSIVE
# Tests keep screenshots and figures here for CI to collect (docs/registry.md).
export IMET_ARTIFACTS ?= $(CURDIR)/out/artifacts

# The revision the registry records for every run (internal/buildinfo),
# stamped here because builds with GOFLAGS=-buildvcs=false embed no VCS data.
REVISION ?= $(shell git describe --always --dirty 2>/dev/null)

# The run path lets `imet export` ship the binary with its libraries in lib/
# (internal/bundle.BuildFlag).
.PHONY: demo test build deps vet

deps:
	@scripts/deps.sh
	@scripts/assets.sh

build: deps
	$(GO) build -ldflags='-X imet/internal/buildinfo.Revision=$(REVISION) -extldflags "-Wl,--disable-new-dtags,-rpath,$$ORIGIN/lib"' -o bin/imet ./cmd/imet

demo: build
	bin/imet demo --out out/demo

test: deps
	$(GO) vet ./...
	$(GO) test -timeout 25m ./...
