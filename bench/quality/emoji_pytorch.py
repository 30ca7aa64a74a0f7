#!/usr/bin/python3
"""The quality benchmark's reference: bench/quality/emoji-resnet18.yaml in PyTorch.

It does what `imet cv --folds 0 --rules global` does with that recipe:

- data: out/emoji from `imet datasets emoji`; fold 0 of folds.csv (split by
  base emoji) is validation, the other folds train; test images are the rows
  of sample_submission.csv;
- model: torchvision resnet18, random init (Kaiming fan-out, as imet),
  seed 1 (or SEED), num_classes = labels;
- input: 64x64 RGB, ImageNet mean/std; training flips each image
  horizontally with probability 0.5;
- one stage of EPOCHS epochs, batch 32, last short batch dropped; AdamW
  (lr 2e-3, weight decay 1e-4 on every parameter, betas 0.9/0.999, eps 1e-8);
  rate factor = linear warm-up from 0.1 over 20 steps, then cosine to 0 over
  the remaining steps (imet's internal/training/schedule formula, via LambdaLR);
  mean BCE with logits;
- validation every epoch: samples-averaged F2 at the best threshold on the
  0.01 grid; the best epoch's weights are kept (as imet's best checkpoint);
- out-of-fold and test probabilities with the best weights, averaged over
  the identity and the mirror image (imet's tta: flip);
- threshold: the best global one on the 0.005 grid of the out-of-fold
  probabilities, every row keeping at least its most probable label (imet's
  thresholds.Search global rule); submission.csv in OUT with the same rule.

  /usr/bin/python3 bench/quality/emoji_pytorch.py DATA OUT [EPOCHS [THREADS [SEED]]]

Prints one line per epoch and a summary; bench/quality/score.py scores
OUT/submission.csv against DATA/test_labels.csv.
"""
import csv
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
import torchvision
from PIL import Image

t0 = time.time()
root, out = sys.argv[1], sys.argv[2]
epochs = int(sys.argv[3]) if len(sys.argv) > 3 else 4
threads = int(sys.argv[4]) if len(sys.argv) > 4 else 2
seed = int(sys.argv[5]) if len(sys.argv) > 5 else 1
torch.set_num_threads(threads)
torch.manual_seed(seed)
os.makedirs(out, exist_ok=True)

labels = [r["attribute_id"] for r in csv.DictReader(open(f"{root}/labels.csv"))]
col = {a: i for i, a in enumerate(labels)}
L = len(labels)
folds = {r["id"]: int(r["fold"]) for r in csv.DictReader(open(f"{root}/folds.csv"))}
rows = [(r["id"], [col[a] for a in r["attribute_ids"].split()]) for r in csv.DictReader(open(f"{root}/train.csv"))]
test_ids = [r["id"] for r in csv.DictReader(open(f"{root}/sample_submission.csv"))]
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def load(d, ids):
    def one(i):
        im = Image.open(f"{d}/{i}.png").convert("RGB")
        if im.size != (64, 64):
            im = im.resize((64, 64), Image.BILINEAR)
        return np.asarray(im)
    x = np.stack([one(i) for i in ids])
    return ((torch.from_numpy(x).permute(0, 3, 1, 2).float() / 255) - mean) / std


tr = [r for r in rows if folds[r[0]] != 0]
va = [r for r in rows if folds[r[0]] == 0]
ytr = torch.zeros(len(tr), L)
for k, (_, ls) in enumerate(tr):
    ytr[k, ls] = 1
xtr = load(f"{root}/train", [r[0] for r in tr])
xva = load(f"{root}/train", [r[0] for r in va])
xte = load(f"{root}/test", test_ids)
truth = [set(r[1]) for r in va]
load_s = time.time() - t0


def f2_rows(pred):
    """Samples-averaged F2 of boolean predictions [rows, L] against truth."""
    s = 0.0
    for i, t in enumerate(truth):
        ps = np.flatnonzero(pred[i])
        tp = len(t.intersection(ps.tolist()))
        if tp:
            s += 5 * tp / (4 * len(t) + len(ps))
    return s / len(truth)


def at_least_one(p, pred):
    pred = pred.copy()
    empty = ~pred.any(1)
    pred[empty, p[empty].argmax(1)] = True
    return pred


def best_threshold(p, grid, keep_one):
    best = (-1.0, 0.0)
    for th in grid:
        pred = p >= th
        if keep_one:
            pred = at_least_one(p, pred)
        s = f2_rows(pred)
        if s > best[0]:
            best = (s, th)
    return best


yva = torch.zeros(len(va), L)
for k, (_, ls) in enumerate(va):
    yva[k, ls] = 1


def predict(x, tta):
    """Probabilities for x; without TTA also sets val_loss (x is xva then)."""
    global val_loss
    model.eval()
    out, loss_sum = [], 0.0
    with torch.no_grad():
        for i in range(0, len(x), 128):
            b = x[i:i + 128]
            logits = model(b)
            p = torch.sigmoid(logits)
            if not tta:
                loss_sum += F.binary_cross_entropy_with_logits(logits, yva[i:i + 128], reduction="sum").item()
            if tta:
                p = (p + torch.sigmoid(model(b.flip(3)))) / 2
            out.append(p)
    model.train()
    if not tta:
        val_loss = loss_sum / (len(x) * L)
    return torch.cat(out).numpy()


model = torchvision.models.resnet18(num_classes=L)
bs, warm, base_lr = 32, 20, 2e-3
steps_per_epoch = len(tr) // bs
total = epochs * steps_per_epoch


def factor(step):
    if step < warm:
        return 0.1 + 0.9 * step / warm
    t = min(step - warm, total - warm)
    return (1 + math.cos(math.pi * t / (total - warm))) / 2


opt = torch.optim.AdamW(model.parameters(), lr=base_lr, weight_decay=1e-4)
sch = torch.optim.lr_scheduler.LambdaLR(opt, factor)
gen = torch.Generator().manual_seed(seed)
best, best_state, train_s = -1.0, None, 0.0
model.train()
for ep in range(epochs):
    te = time.time()
    perm = torch.randperm(len(tr), generator=gen)
    loss_sum = 0.0
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
        loss_sum += loss.item()
    train_s += time.time() - te
    f2, th = best_threshold(predict(xva, False), [k / 100 for k in range(1, 100)], False)
    if f2 > best:
        best, best_state = f2, {k: v.clone() for k, v in model.state_dict().items()}
    print(f"pytorch epoch={ep + 1} train_loss={loss_sum / steps_per_epoch:.5f} val_loss={val_loss:.5f} f2={f2:.4f} threshold={th:.2f} epoch_s={time.time() - te:.1f}", flush=True)

model.load_state_dict(best_state)
oof = predict(xva, True)
oof_f2, th = best_threshold(oof, [k / 200 for k in range(1, 200)], True)
test = predict(xte, True)
pred = at_least_one(test, test >= th)
with open(f"{out}/submission.csv", "w") as f:
    f.write("id,attribute_ids\n")
    for i, row in zip(test_ids, pred):
        f.write(i + "," + " ".join(labels[c] for c in np.flatnonzero(row)) + "\n")
print(f"pytorch images_per_s={total * bs / train_s:.1f} load_s={load_s:.1f} train_s={train_s:.1f}")
print(f"pytorch best_val_f2={best:.4f} oof_f2={oof_f2:.4f} threshold={th:.3f} wall_s={time.time() - t0:.1f} "
      f"train={len(tr)} val={len(va)} test={len(test_ids)} labels={L}", flush=True)
