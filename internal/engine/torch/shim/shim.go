// Package shim compiles the C++ side of imet's libtorch binding. It holds no
// Go API: package torch calls the functions declared in shim.h. Keeping the
// C++ in its own package means editing Go code never recompiles it.
//
// The default flags point at Debian's libtorch-dev. To build against another
// libtorch (CUDA, or a PyTorch wheel's torch/include and torch/lib), build
// with the tag `customtorch` and set CGO_CXXFLAGS and CGO_LDFLAGS; see
// docs/engine.md.
package shim

// #cgo CXXFLAGS: -std=c++17 -O2 -Wno-deprecated-declarations
// #cgo LDFLAGS: -lstdc++
import "C"
