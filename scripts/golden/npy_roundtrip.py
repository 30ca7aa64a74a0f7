#!/usr/bin/python3
"""NumPy side of internal/postprocess/probs' round-trip test.

    /usr/bin/python3 scripts/golden/npy_roundtrip.py DIR

Reads DIR/go.npy (written by imet), checks it is a C-order float32 array
that np.load understands, then writes the same values back in every layout
imet must read (float32, float64, float16, big-endian) and the ones it must
refuse (Fortran order, int32, 3-D), and a copy of the matrix re-saved as
float32 for the exact comparison.
"""
import sys

import numpy as np

d = sys.argv[1]
a = np.load(f"{d}/go.npy")
assert a.dtype == np.float32, a.dtype
assert a.flags["C_CONTIGUOUS"]
np.save(f"{d}/f4.npy", a)
np.save(f"{d}/f8.npy", a.astype(np.float64))
np.save(f"{d}/f2.npy", a.astype(np.float16))
np.save(f"{d}/be.npy", a.astype(">f4"))
np.save(f"{d}/fortran.npy", np.asfortranarray(a))
np.save(f"{d}/int.npy", a.astype(np.int32))
np.save(f"{d}/rank3.npy", a.reshape(1, *a.shape))
# Values rounded through float16, for the comparison on the Go side.
np.save(f"{d}/f2_expected.npy", a.astype(np.float16).astype(np.float32))
print(f"{a.shape[0]} {a.shape[1]} {float(a.sum()):.6f}")
