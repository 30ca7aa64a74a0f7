"""Reference for xgb_test.go: python3-xgboost trains on the same matrices
with the same parameters and rounds as the Go booster, and writes its
predictions, so the Go test can compare them.

usage: xgb_ref.py DIR   (DIR holds x.npy, y.npy, xtest.npy, params.json;
                         writes pred.npy)
"""
import json
import os
import sys

import numpy as np
import xgboost as xgb

d = sys.argv[1]
x = np.load(os.path.join(d, "x.npy"))
y = np.load(os.path.join(d, "y.npy")).reshape(-1)
xt = np.load(os.path.join(d, "xtest.npy"))
cfg = json.load(open(os.path.join(d, "params.json")))
params = [(p["Name"], p["Value"]) for p in cfg["params"]]
b = xgb.train(params, xgb.DMatrix(x, label=y, missing=np.nan), num_boost_round=cfg["rounds"])
pred = b.predict(xgb.DMatrix(xt, missing=np.nan))
np.save(os.path.join(d, "pred.npy"), pred.astype(np.float32).reshape(-1, 1))
