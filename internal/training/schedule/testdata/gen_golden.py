#!/usr/bin/python3
"""Golden learning rates from torch.optim.lr_scheduler for schedule_test.go.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 gen_golden.py > golden.json
Each case lists the rate PyTorch uses at optimizer steps 0..total-1.
"""
import json
import torch
from torch.optim import lr_scheduler as S

BASE = 0.01


def opt():
    p = torch.nn.Parameter(torch.zeros(1))
    return torch.optim.SGD([p], lr=BASE, momentum=0.9)


def run(make, total, metrics=None):
    o = opt()
    s = make(o)
    out = []
    for i in range(total):
        out.append(o.param_groups[0]["lr"])
        o.step()
        if metrics is None:
            s.step()
        else:
            s.step(metrics[i])
    return out


cases = []
T = 40
cases.append(dict(name="constant_warmup", config=dict(name="constant", warmup_steps=5, warmup_start_factor=0.1), total=T,
                  lrs=run(lambda o: S.LinearLR(o, start_factor=0.1, total_iters=5), T)))
cases.append(dict(name="cosine", config=dict(name="cosine", min_factor=0.05), total=T,
                  lrs=run(lambda o: S.CosineAnnealingLR(o, T_max=T, eta_min=BASE * 0.05), T)))
cases.append(dict(name="cosine_warmup", config=dict(name="cosine", warmup_steps=6, warmup_start_factor=0.2, min_factor=0.0), total=T,
                  lrs=run(lambda o: S.SequentialLR(o, [S.LinearLR(o, start_factor=0.2, total_iters=6),
                                                       S.CosineAnnealingLR(o, T_max=T - 6, eta_min=0.0)], milestones=[6]), T)))
cases.append(dict(name="onecycle", config=dict(name="onecycle", pct_start=0.25, div_factor=25, final_div_factor=1e4), total=T,
                  lrs=run(lambda o: S.OneCycleLR(o, max_lr=BASE, total_steps=T, pct_start=0.25, div_factor=25,
                                                 final_div_factor=1e4, cycle_momentum=False), T)))
cases.append(dict(name="step", config=dict(name="step", step_size=7, gamma=0.5), total=T,
                  lrs=run(lambda o: S.StepLR(o, step_size=7, gamma=0.5), T)))
# Plateau: one "validation" per step with a metric that rises, stalls, rises.
m = [0.1, 0.2, 0.3, 0.3, 0.3, 0.3, 0.3001, 0.3, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.4, 0.5, 0.5, 0.5, 0.5,
     0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5]
cases.append(dict(name="plateau", config=dict(name="plateau", factor=0.5, patience=2, threshold=1e-3, cooldown=1, min_scale=0.05),
                  total=len(m), metrics=m,
                  lrs=run(lambda o: S.ReduceLROnPlateau(o, mode="max", factor=0.5, patience=2, threshold=1e-3,
                                                        threshold_mode="rel", cooldown=1, min_lr=BASE * 0.05), len(m), m)))
print(json.dumps(dict(base=BASE, torch=torch.__version__, cases=cases), indent=1))
