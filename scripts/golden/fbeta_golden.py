#!/usr/bin/python3
"""Golden F-beta values for internal/postprocess/fbeta, from scikit-learn.

Run with Debian's Python (python3-sklearn, python3-numpy):
    /usr/bin/python3 scripts/golden/fbeta_golden.py > internal/postprocess/fbeta/testdata/golden.json
Random small fixtures, seeded, with rows whose truth and/or prediction are
empty so that the zero_division rule is exercised.
"""
import json
import warnings

import numpy as np
import sklearn
from sklearn.metrics import fbeta_score

warnings.filterwarnings("ignore")
rng = np.random.default_rng(20190528)
cases = []
for case in range(6):
    n, L = int(rng.integers(5, 40)), int(rng.integers(6, 12))
    groups = rng.integers(0, 3, size=L)
    groups[:6] = [0, 1, 2, 0, 1, 2]  # sklearn needs 2+ columns per group
    density = [0.05, 0.2, 0.4][case % 3]
    Y = (rng.random((n, L)) < density).astype(int)
    P = np.where(rng.random((n, L)) < 0.7, Y, (rng.random((n, L)) < density).astype(int))
    Y[0, :] = 0; P[0, :] = 0          # both empty
    Y[1, :] = 0; P[1, 0] = 1          # nothing true, something predicted
    P[2, :] = 0; Y[2, 1] = 1          # something true, nothing predicted
    beta = [2.0, 1.0, 0.5][case % 3]
    out = {"n_labels": L, "beta": beta, "group_of": groups.tolist(),
           "truth": [np.flatnonzero(r).tolist() for r in Y],
           "pred": [np.flatnonzero(r).tolist() for r in P]}
    out["samples_zero"] = fbeta_score(Y, P, beta=beta, average="samples", zero_division=0)
    out["samples_one"] = fbeta_score(Y, P, beta=beta, average="samples", zero_division=1)
    keep = (Y.sum(1) + P.sum(1)) > 0
    out["samples_skip"] = fbeta_score(Y[keep], P[keep], beta=beta, average="samples", zero_division=0)
    out["per_label"] = fbeta_score(Y, P, beta=beta, average=None, zero_division=0).tolist()
    out["per_group_zero"] = [fbeta_score(Y[:, groups == g], P[:, groups == g], beta=beta,
                                         average="samples", zero_division=0) for g in range(3)]
    out["per_group_one"] = [fbeta_score(Y[:, groups == g], P[:, groups == g], beta=beta,
                                        average="samples", zero_division=1) for g in range(3)]
    cases.append(out)
print(json.dumps({"sklearn": sklearn.__version__, "cases": cases}))
