#!/usr/bin/python3
"""Golden loss values and gradients for losses_test.go, from PyTorch.

Run with Debian's python3 (torch 1.13):  /usr/bin/python3 gen_golden.py > golden.json
Each case: the loss of fixed logits against soft targets, and d loss / d logits.
BCE and focal use PyTorch's own functions (torch.nn.functional,
torchvision.ops.sigmoid_focal_loss); soft F-beta and ASL follow their papers'
reference code (ASL: Ridnik et al. 2021, github.com/Alibaba-MIIL/ASL,
losses.py AsymmetricLoss), written here in PyTorch.
"""
import json
import torch
import torch.nn.functional as F
from torchvision.ops import sigmoid_focal_loss

torch.manual_seed(0)
B, C = 4, 6
x0 = (torch.randn(B, C, dtype=torch.float64) * 2).float()
y_hard = (torch.rand(B, C) < 0.35).float()
y_soft = torch.rand(B, C)  # soft targets (pseudo-labels, mixup)


def smooth(y, s):
    return y * (1 - s) + s / 2


def bce(x, y, s=0.0, pw=None):
    p = None if pw is None else torch.full((C,), pw)
    return F.binary_cross_entropy_with_logits(x, smooth(y, s), pos_weight=p)


def focal(x, y, gamma, alpha, s=0.0):
    # torchvision's focal loss takes any targets in [0, 1]; alpha < 0 disables.
    return sigmoid_focal_loss(x, smooth(y, s), alpha=alpha if alpha > 0 else -1, gamma=gamma, reduction="mean")


def fbeta(x, y, beta, eps=1e-7):
    p = torch.sigmoid(x)
    b2 = beta * beta
    tp = (p * y).sum(1)
    f = (1 + b2) * tp / (b2 * y.sum(1) + p.sum(1) + eps)
    return 1 - f.mean()


def asl(x, y, gp, gn, clip, eps=1e-8):
    # AsymmetricLoss.forward, with the focusing weight written per side so
    # soft targets are accepted (identical to the original for 0/1 targets),
    # and the mean over elements instead of the sum.
    xs_pos = torch.sigmoid(x)
    xs_neg = 1 - xs_pos
    if clip > 0:
        xs_neg = (xs_neg + clip).clamp(max=1)
    lp = y * torch.log(xs_pos.clamp(min=eps)) * torch.pow(1 - xs_pos, gp)
    ln = (1 - y) * torch.log(xs_neg.clamp(min=eps)) * torch.pow(1 - xs_neg, gn)
    return -(lp + ln).mean()


def weighted(x, y):
    return 1.0 * bce(x, y, 0.1) + 0.5 * fbeta(x, y, 2.0)


cases = [
    ("bce", dict(name="bce"), lambda x, y: bce(x, y)),
    ("bce_smooth_posweight", dict(name="bce", label_smoothing=0.1, pos_weight=3.0), lambda x, y: bce(x, y, 0.1, 3.0)),
    ("focal", dict(name="focal", gamma=2.0, alpha=0.25), lambda x, y: focal(x, y, 2.0, 0.25)),
    ("focal_noalpha_smooth", dict(name="focal", gamma=1.5, alpha=0.0, label_smoothing=0.05),
     lambda x, y: focal(x, y, 1.5, 0.0, 0.05)),
    ("fbeta", dict(name="fbeta", beta=2.0), lambda x, y: fbeta(x, y, 2.0)),
    ("asl", dict(name="asl", gamma_pos=0.0, gamma_neg=4.0, clip=0.05), lambda x, y: asl(x, y, 0.0, 4.0, 0.05)),
    ("asl_gp1_noclip", dict(name="asl", gamma_pos=1.0, gamma_neg=2.0, clip=0.0), lambda x, y: asl(x, y, 1.0, 2.0, 0.0)),
]
out = []
for targets_name, y in (("hard", y_hard), ("soft", y_soft)):
    for name, cfg, fn in cases:
        x = x0.clone().requires_grad_(True)
        loss = fn(x, y)
        loss.backward()
        out.append(dict(name=name + "_" + targets_name, terms=[dict(cfg, weight=1.0)], targets=targets_name,
                        loss=loss.item(), grad=x.grad.flatten().tolist()))
    x = x0.clone().requires_grad_(True)
    loss = weighted(x, y)
    loss.backward()
    out.append(dict(name="sum_" + targets_name,
                    terms=[dict(name="bce", weight=1.0, label_smoothing=0.1), dict(name="fbeta", weight=0.5, beta=2.0)],
                    targets=targets_name, loss=loss.item(), grad=x.grad.flatten().tolist()))
print(json.dumps(dict(torch=torch.__version__, rows=B, cols=C, logits=x0.flatten().tolist(),
                      hard=y_hard.flatten().tolist(), soft=y_soft.flatten().tolist(), cases=out), indent=1))
