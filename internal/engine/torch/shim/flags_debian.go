//go:build !customtorch

package shim

// #cgo CXXFLAGS: -I/usr/include/torch/csrc/api/include
// #cgo LDFLAGS: -L/usr/lib/x86_64-linux-gnu -ltorch -ltorch_cpu -lc10
import "C"
