//go:build customtorch

package shim

// With the customtorch tag no include or library path is built in: they come
// from CGO_CXXFLAGS and CGO_LDFLAGS, which scripts/torchenv.sh prints for a
// given libtorch directory.
