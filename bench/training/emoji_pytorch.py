#!/usr/bin/python3
"""The quality benchmark's reference: bench/training/emoji-resnet18.yaml in PyTorch.

Same data (fold 0 of out/emoji from `imet datasets emoji`), same model
(torchvision resnet18, random init, seed 1), same stages, per-group rates,
AdamW, schedules (LinearLR warm-up then constant; CosineAnnealingLR), BCE
loss, batch 32 with the last short batch dropped, horizontal flips, ImageNet
normalisation; validation every epoch with F2 at the best global threshold
on a 0.01 grid. Prints the best validation F2 and the wall time.

  /usr/bin/python3 bench/training/emoji_pytorch.py out/emoji [EPOCHS_WARM EPOCHS_ANNEAL [LIMIT]]

The optional arguments shorten the recipe (and keep only the first LIMIT
rows of train.csv, as data.limit does) for a quick side-by-side check.
"""
import csv
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

t0 = time.time()
root = sys.argv[1] if len(sys.argv) > 1 else "out/emoji"
torch.set_num_threads(2)
torch.manual_seed(1)
rng = np.random.default_rng(1)

labels = [r["attribute_id"] for r in csv.DictReader(open(f"{root}/labels.csv"))]
col = {a: i for i, a in enumerate(labels)}
L = len(labels)
folds = {r["id"]: int(r["fold"]) for r in csv.DictReader(open(f"{root}/folds.csv"))}
rows = [(r["id"], [col[a] for a in r["attribute_ids"].split()]) for r in csv.DictReader(open(f"{root}/train.csv"))]
ep_warm, ep_anneal = (int(sys.argv[2]), int(sys.argv[3])) if len(sys.argv) > 3 else (2, 10)
if len(sys.argv) > 4:
    rows = rows[:int(sys.argv[4])]
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load(ids):
    x = np.stack([np.asarray(Image.open(f"{root}/train/{i}.png").convert("RGB").resize((64, 64), Image.BILINEAR)) for i in ids])
    return ((torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255) - mean) / std


def targets(rs):
    y = torch.zeros(len(rs), L)
    for k, (_, ls) in enumerate(rs):
        y[k, ls] = 1
    return y


tr = [r for r in rows if folds[r[0]] != 0]
va = [r for r in rows if folds[r[0]] == 0]
xtr, ytr = load([r[0] for r in tr]), targets(tr)
xva = load([r[0] for r in va])
truth = [set(r[1]) for r in va]

model = torchvision.models.resnet18(num_classes=L)
groups = {
    "stem": [model.conv1, model.bn1], "stage1": [model.layer1], "stage2": [model.layer2],
    "stage3": [model.layer3], "stage4": [model.layer4], "head": [model.fc],
}


def params(names):
    return [p for n in names for m in groups[n] for p in m.parameters()]


def f2_best(p):
    best = (0.0, 0.0)
    for k in range(1, 100):
        th = k / 100
        pred = p >= th
        s = 0.0
        for i, t in enumerate(truth):
            ps = set(np.nonzero(pred[i])[0].tolist())
            tp = len(ps & t)
            if tp:
                s += 5 * tp / (4 * len(t) + len(ps))
        s /= len(truth)
        if s > best[0]:
            best = (s, th)
    return best


def validate():
    model.eval()
    out = []
    with torch.no_grad():
        for i in range(0, len(xva), 128):
            out.append(torch.sigmoid(model(xva[i:i + 128])))
    model.train()
    return f2_best(torch.cat(out).numpy())


bs = 32
steps_per_epoch = len(tr) // bs
stages = [
    dict(epochs=ep_warm, groups=[(list(groups), 1e-3)], sched="warm"),
    dict(epochs=ep_anneal, groups=[(["stem", "stage1", "stage2"], 5e-4), (["stage3", "stage4"], 1e-3), (["head"], 2e-3)], sched="cos"),
]
best = 0.0
train_s = 0.0
gen = torch.Generator().manual_seed(1)
for si, st in enumerate(stages):
    if st["epochs"] == 0:
        continue
    opt = torch.optim.AdamW([dict(params=params(g), lr=lr) for g, lr in st["groups"]], weight_decay=1e-4)
    total = st["epochs"] * steps_per_epoch
    if st["sched"] == "warm":
        sch = torch.optim.lr_scheduler.LinearLR(opt, start_factor=0.1, total_iters=20)
    else:
        sch = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    model.train()
    for ep in range(st["epochs"]):
        te = time.time()
        perm = torch.randperm(len(tr), generator=gen)
        for b in range(steps_per_epoch):
            idx = perm[b * bs:(b + 1) * bs]
            x, y = xtr[idx], ytr[idx]
            flip = torch.rand(len(idx), generator=gen) < 0.5
            x = torch.where(flip.view(-1, 1, 1, 1), x.flip(3), x)
            loss = F.binary_cross_entropy_with_logits(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sch.step()
        train_s += time.time() - te
        f2, th = validate()
        best = max(best, f2)
        print(f"stage={si} epoch={ep + 1} loss={loss.item():.4f} f2={f2:.4f} threshold={th:.2f} epoch_s={time.time() - te:.1f}", flush=True)
print(f"pytorch images_per_s={(sum(s['epochs'] for s in stages) * steps_per_epoch * bs) / train_s:.1f}")
print(f"pytorch best_f2={best:.4f} wall_s={time.time() - t0:.1f} train={len(tr)} val={len(va)} labels={L}")
