#!/usr/bin/python3
"""Checks that the synthetic sample (imet datasets synth) is learnable by a
small CNN on 2 cores in a few minutes: trains on train.csv (noisy labels),
reports samples-averaged F2 on the clean test labels (test_labels.csv).

Independent of imet's own training code (plain PyTorch), so it tells
whether the data is at fault when imet's demo F2 is low.

    imet datasets synth --out /tmp/syn
    /usr/bin/python3 scripts/synth_learnability.py /tmp/syn [--size 64] [--epochs 15]
"""
import argparse, csv, os, time
import numpy as np
import torch, torch.nn as nn
from PIL import Image
from sklearn.metrics import fbeta_score

ap = argparse.ArgumentParser()
ap.add_argument("dir")
ap.add_argument("--size", type=int, default=64)
ap.add_argument("--epochs", type=int, default=15)
ap.add_argument("--threads", type=int, default=2)
ap.add_argument("--seed", type=int, default=0)
a = ap.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(a.seed)
np.random.seed(a.seed)

labels = [int(r["attribute_id"]) for r in csv.DictReader(open(os.path.join(a.dir, "labels.csv")))]
col = {l: i for i, l in enumerate(labels)}

def read(path, sub):
    ids, y = [], []
    for r in csv.DictReader(open(os.path.join(a.dir, path))):
        ids.append(r["id"])
        v = np.zeros(len(labels), np.float32)
        for t in r["attribute_ids"].split():
            v[col[int(t)]] = 1
        y.append(v)
    x = np.stack([np.asarray(Image.open(os.path.join(a.dir, sub, i + ".png")).convert("RGB")
                             .resize((a.size, a.size), Image.BILINEAR), np.float32) / 255 for i in ids])
    return torch.tensor(x).permute(0, 3, 1, 2).contiguous(), torch.tensor(np.stack(y))

t0 = time.time()
xtr, ytr = read("train.csv", "train")
xte, yte = read("test_labels.csv", "test")
_, yclean = read("train_clean.csv", "train")
print(f"loaded {len(xtr)} train, {len(xte)} test at {a.size}px in {time.time()-t0:.1f}s")

def block(i, o):
    return nn.Sequential(nn.Conv2d(i, o, 3, padding=1), nn.BatchNorm2d(o), nn.ReLU(), nn.MaxPool2d(2))
net = nn.Sequential(block(3, 32), block(32, 64), block(64, 128), block(128, 128),
                    nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(128, len(labels)))
opt = torch.optim.AdamW(net.parameters(), 3e-3, weight_decay=1e-4)
steps = a.epochs * ((len(xtr) + 63) // 64)
sched = torch.optim.lr_scheduler.OneCycleLR(opt, 3e-3, total_steps=steps)
lossf = nn.BCEWithLogitsLoss()
t0 = time.time()
for ep in range(a.epochs):
    net.train()
    perm = torch.randperm(len(xtr))
    for b in range(0, len(xtr), 64):
        idx = perm[b:b + 64]
        xb = xtr[idx]
        if torch.rand(1) < 0.5:
            xb = xb.flip(3)
        loss = lossf(net(xb), ytr[idx])
        opt.zero_grad(); loss.backward(); opt.step(); sched.step()
    print(f"epoch {ep+1} loss {loss.item():.4f} {time.time()-t0:.0f}s", flush=True)

net.eval()
with torch.no_grad():
    pte = torch.sigmoid(net(xte)).numpy()
    ptr = torch.sigmoid(torch.cat([net(xtr[i:i + 256]) for i in range(0, len(xtr), 256)])).numpy()
def f2(y, p, t):
    return fbeta_score(y, p > t, beta=2, average="samples", zero_division=0)
best = max((f2(ytr.numpy(), ptr, t), t) for t in np.arange(0.05, 0.6, 0.025))
print(f"train time {time.time()-t0:.0f}s; threshold {best[1]:.3f} (chosen on train, noisy labels)")
print(f"F2 train noisy {f2(ytr.numpy(), ptr, best[1]):.4f}  train clean {f2(yclean.numpy(), ptr, best[1]):.4f}  test clean {f2(yte.numpy(), pte, best[1]):.4f}")
from sklearn.metrics import average_precision_score
names = [r["attribute_name"] for r in csv.DictReader(open(os.path.join(a.dir, "labels.csv")))]
cult = np.array([n.startswith("culture::") for n in names])
acc = (pte[:, cult].argmax(1) == yte.numpy()[:, cult].argmax(1)).mean()
aps = [(average_precision_score(yte.numpy()[:, j], pte[:, j]), names[j]) for j in range(len(names)) if not cult[j] and yte.numpy()[:, j].sum() > 0]
print(f"test culture accuracy (argmax) {acc:.3f}; tag mean AP {np.mean([x for x, _ in aps]):.3f}; worst tags", sorted(aps)[:5])
print(f"F2 of the noisy train labels themselves against the clean ones: {fbeta_score(yclean.numpy(), ytr.numpy(), beta=2, average='samples'):.4f}")
