"""NumPy reference for knn_test.go: exact cosine k-NN with group exclusion
and softmax label transfer, in float64.

usage: knn_ref.py DIR K TEMP   (DIR holds q.npy, b.npy, qg.npy, bg.npy,
                                y.npy; writes idx.npy, sim.npy, tr.npy)
"""
import os
import sys

import numpy as np

d, k, temp = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
load = lambda n: np.load(os.path.join(d, n + ".npy")).astype(np.float64)
q, b, y = load("q"), load("b"), load("y")
qg, bg = load("qg").reshape(-1), load("bg").reshape(-1)


def unit(x):
    n = np.linalg.norm(x, axis=1, keepdims=True)
    return x / np.maximum(n, 1e-12)


s = unit(q) @ unit(b).T
s[qg[:, None] == bg[None, :]] = -np.inf
idx = np.argsort(-s, axis=1, kind="stable")[:, :k]
sim = np.take_along_axis(s, idx, axis=1)
w = np.exp((sim - sim[:, :1]) / temp)
w /= w.sum(axis=1, keepdims=True)
tr = np.einsum("qn,qnc->qc", w, y[idx])
np.save(os.path.join(d, "idx.npy"), idx.astype(np.float32))
np.save(os.path.join(d, "sim.npy"), sim.astype(np.float32))
np.save(os.path.join(d, "tr.npy"), tr.astype(np.float32))
