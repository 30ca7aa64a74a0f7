#!/usr/bin/python3
"""Reference for `bench-engine -parity`: PyTorch's own outputs of one
architecture on one device (the GPU check runs it on CUDA).

  python3 bench/engine/parity.py ARCH DEVICE OUTDIR

Writes OUTDIR/weights.pth (seeded random weights, BatchNorm statistics
randomised so evaluation mode means something) and OUTDIR/io.json: eval-mode
logits, training-mode logits and BCE loss (BatchNorm on batch statistics),
and the L1 norm of every parameter's gradient from an evaluation-mode
backward (frozen statistics: the conditioned case, see
scripts/golden/torchvision_parity.py). Input and targets are the formula
bench/engine/parity.go computes too, so nothing else travels.
"""
import json
import math
import os
import sys

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench import build  # noqa: E402

BATCH, SIZE, CLASSES = 4, 224, 16


def det_input(n):
    i = torch.arange(n, dtype=torch.float64)
    return (torch.sin(0.1 + 0.31 * i) * torch.cos(0.0007 * i)).float()


def main():
    arch, device, out = sys.argv[1], sys.argv[2], sys.argv[3]
    os.makedirs(out, exist_ok=True)
    torch.manual_seed(0)
    model = build(arch, CLASSES)
    with torch.no_grad():
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.normal_(0, 0.1)
            elif name.endswith("running_var"):
                b.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), os.path.join(out, "weights.pth"))
    model = model.to(device)
    x = det_input(BATCH * 3 * SIZE * SIZE).reshape(BATCH, 3, SIZE, SIZE).to(device)
    y = torch.tensor([1.0 if (i * 7) % 3 == 0 else 0.0 for i in range(BATCH * CLASSES)]).reshape(BATCH, CLASSES).to(device)
    res = {"arch": arch, "device": device, "torch": torch.__version__, "batch": BATCH, "size": SIZE, "classes": CLASSES}
    model.eval()
    with torch.no_grad():
        res["logits_eval"] = model(x).flatten().tolist()
    model.train()
    with torch.no_grad():
        lt = model(x)
        res["logits_train"] = lt.flatten().tolist()
        res["loss_train"] = F.binary_cross_entropy_with_logits(lt, y).item()
    model.eval()
    loss = F.binary_cross_entropy_with_logits(model(x), y)
    loss.backward()
    res["loss_eval"] = loss.item()
    res["grad_l1"] = {n: p.grad.abs().sum().item() for n, p in model.named_parameters()}
    with open(os.path.join(out, "io.json"), "w") as f:
        json.dump(res, f)


if __name__ == "__main__":
    main()
