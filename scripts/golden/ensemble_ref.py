#!/usr/bin/python3
"""NumPy/SciPy side of bench/ensemble: the same combinations as imet's
internal/postprocess/ensemble, timed on the same files.

    /usr/bin/python3 scripts/golden/ensemble_ref.py REPS a.npy b.npy ...

Prints one JSON object: method -> fastest seconds (file loading excluded),
and the largest difference from imet's result when DIR/<method>.npy exists
next to the first input.
"""
import json
import os
import sys
import time

import numpy as np
from scipy.stats import rankdata

reps = int(sys.argv[1])
files = [np.load(p) for p in sys.argv[2:]]
d = os.path.dirname(sys.argv[2])
methods = {
    "mean": lambda: sum(x.astype(np.float64) for x in files) / len(files),
    "rank": lambda: sum(rankdata(x, axis=0) / x.shape[0] for x in files) / len(files),
    "geomean": lambda: np.exp(sum(np.log(np.clip(x.astype(np.float64), 1e-7, 1)) for x in files) / len(files)),
}
out = {}
for name, fn in methods.items():
    best = None
    for _ in range(reps):
        t = time.perf_counter()
        r = fn()
        s = time.perf_counter() - t
        best = s if best is None else min(best, s)
    out[name] = {"seconds": best}
    p = os.path.join(d, name + ".npy")
    if os.path.exists(p):
        out[name]["max_abs_diff"] = float(np.abs(np.load(p).astype(np.float64) - r).max())
print(json.dumps(out))
