#!/usr/bin/python3
"""Writes golden.json: parameters after 6 steps of torch.optim.AdamW / SGD
(PyTorch 1.13) on a deterministic problem that optim_test.go rebuilds:
loss_t = sum(0.5 * c_t * p^2 + d_t * p) per parameter, so grad = c_t*p + d_t.

Run: /usr/bin/python3 internal/engine/optim/testdata/gen_golden.py
"""
import json
import math
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
SHAPES = {"a": [3, 4], "b": [5], "c": [2, 2, 2]}
STEPS = 6


def wave(seed, n):
    return np.sin(seed + 1.618034 * np.arange(n, dtype=np.float64)).astype(np.float32)


def coef(name, t, n):
    k = ord(name) - ord("a")
    c = 1 + 0.5 * wave(0.3 * t + k, n)
    d = 0.2 * wave(1.7 * t + 2 * k + 0.5, n)
    return c, d


CASES = [
    {"name": "adamw_default", "kind": "adamw"},
    {"name": "adamw_betas", "kind": "adamw", "betas": [0.8, 0.99], "eps": 1e-6},
    {"name": "sgd_plain", "kind": "sgd", "momentum": 0.0},
    {"name": "sgd_momentum", "kind": "sgd", "momentum": 0.9},
    {"name": "sgd_nesterov", "kind": "sgd", "momentum": 0.9, "nesterov": True},
    {"name": "sgd_dampening", "kind": "sgd", "momentum": 0.5, "dampening": 0.1},
]
GROUPS = [{"params": ["a", "b"], "lr": 0.01, "weight_decay": 0.1},
          {"params": ["c"], "lr": 0.05, "weight_decay": 0.0}]


def run(case):
    ps = {n: torch.tensor(wave(0.1 * (i + 1), int(np.prod(s))).reshape(s), requires_grad=True)
          for i, (n, s) in enumerate(SHAPES.items())}
    groups = [{"params": [ps[n] for n in g["params"]], "lr": g["lr"], "weight_decay": g["weight_decay"]}
              for g in GROUPS]
    if case["kind"] == "adamw":
        opt = torch.optim.AdamW(groups, betas=tuple(case.get("betas", [0.9, 0.999])), eps=case.get("eps", 1e-8),
                                foreach=False)
    else:
        opt = torch.optim.SGD(groups, lr=0.01, momentum=case["momentum"], dampening=case.get("dampening", 0),
                              nesterov=case.get("nesterov", False), foreach=False)
    for t in range(STEPS):
        opt.zero_grad()
        loss = 0
        for n, p in ps.items():
            c, d = coef(n, t, p.numel())
            c = torch.from_numpy(c).reshape(p.shape)
            d = torch.from_numpy(d).reshape(p.shape)
            loss = loss + (0.5 * c * p * p + d * p).sum()
        loss.backward()
        opt.step()
    return {n: p.detach().flatten().tolist() for n, p in ps.items()}


if __name__ == "__main__":
    out = {"torch": torch.__version__, "steps": STEPS, "shapes": SHAPES, "groups": GROUPS, "cases": CASES,
           "results": {c["name"]: run(c) for c in CASES}}
    with open(os.path.join(HERE, "golden.json"), "w") as f:
        json.dump(out, f, indent=0)
