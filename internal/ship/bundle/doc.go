// Package bundle writes and checks offline inference bundles: a folder with
// the imet executable, the shared libraries it really needs (found by ELF
// analysis, so a library that provides no referenced symbol is left out) in
// lib/ with the binary's run path set to $ORIGIN/lib, the run's weights,
// thresholds and pipeline, and a manifest of every file with its SHA-256.
// A bundle copied to a machine without libtorch or network predicts the
// same bytes as the run it came from.
package bundle
