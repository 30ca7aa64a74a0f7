#!/usr/bin/python3
"""Reference values for ops_test.go: reads {"x": [...], "y": [...], "shape": [r, c],
"ops": {name: expression}} on stdin, evaluates each expression with torch
(x, y as float32 tensors of that shape), prints {name: flat list of floats}.
Run by the test itself, so the values come from the same machine's kernels."""
import json
import sys

import torch

torch.set_num_threads(1)
req = json.load(sys.stdin)
shape = req["shape"]
x = torch.tensor(req["x"], dtype=torch.float32).reshape(shape)
y = torch.tensor(req["y"], dtype=torch.float32).reshape(shape)
out = {}
for name, expr in req["ops"].items():
    v = eval(expr, {"torch": torch, "x": x, "y": y})
    out[name] = [float(a) for a in v.reshape(-1).tolist()]
json.dump(out, sys.stdout)
