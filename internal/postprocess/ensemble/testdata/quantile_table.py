"""Reference for ensemble.QuantileTable: numpy's linear-interpolation
quantiles of each column at i/(n-1), i = 0..n-1.

usage: quantile_table.py IN.npy N OUT.npy
"""
import sys

import numpy as np

x = np.load(sys.argv[1]).astype(np.float64)
n = int(sys.argv[2])
q = np.quantile(x, np.linspace(0.0, 1.0, n), axis=0, method="linear")
np.save(sys.argv[3], q.astype(np.float32))
