#!/usr/bin/python3
"""Golden values for internal/postprocess/ensemble, from NumPy and SciPy.

    /usr/bin/python3 scripts/golden/ensemble_golden.py > internal/postprocess/ensemble/testdata/golden.json

Three small float32 matrices (with tied values, to exercise average ranks)
and their mean, rank average (scipy.stats.rankdata per column / rows),
geometric mean (values clamped to [1e-7, 1]) and weighted mean.
"""
import json

import numpy as np
from scipy.stats import rankdata

rng = np.random.default_rng(7)
n, L = 9, 4
mats = [rng.random((n, L)).astype(np.float32) for _ in range(3)]
mats[0][:3, 0] = 0.5          # ties
mats[1][:, 1] = 0.25          # a constant column
mats[2][4, 2] = 0.0           # a zero for the geometric mean
w = np.array([0.5, 0.3, 0.2])
m64 = [m.astype(np.float64) for m in mats]
out = {
    "inputs": [m.tolist() for m in mats],
    "weights": w.tolist(),
    "mean": (sum(m64) / 3).tolist(),
    "rank": (sum(rankdata(m, axis=0) / n for m in m64) / 3).tolist(),
    "geomean": np.exp(sum(np.log(np.clip(m, 1e-7, 1)) for m in m64) / 3).tolist(),
    "weighted": sum(wi * m for wi, m in zip(w, m64)).tolist(),
}
print(json.dumps(out))
