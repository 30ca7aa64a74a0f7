#!/usr/bin/python3
"""The Python reference for bench/images: PIL + torchvision transforms in a
torch DataLoader, the stack a Python user of albumentations-style pipelines
has. Prints {"rate": images per second, "cpurate": images per CPU-second of
this process} (best of --rounds; cpurate is meaningful with one worker,
where all the work happens in this process).

workers=1 runs in-process (num_workers=0) with one torch thread: one core.
workers=k>1 uses k DataLoader worker processes.
"""
import argparse
import json
import time

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms as T

MEAN, STD = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]


class BrightnessContrast:
    """albumentations' RandomBrightnessContrast on the tensor: x*alpha + beta."""

    def __init__(self, limit, p):
        self.limit, self.p = limit, p

    def __call__(self, t):
        if torch.rand(1).item() >= self.p:
            return t
        alpha = 1 + (torch.rand(1).item() * 2 - 1) * self.limit
        beta = (torch.rand(1).item() * 2 - 1) * self.limit
        return (t * alpha + beta).clamp_(0, 1)


def transform(name):
    if name == "resize320":
        return T.Compose([
            T.Resize((320, 320), interpolation=T.InterpolationMode.BILINEAR),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            BrightnessContrast(0.1, 0.5),
            T.Normalize(MEAN, STD),
        ])
    if name == "aggressive256":
        return T.Compose([
            T.RandomResizedCrop(256, scale=(0.2, 1.0)),
            T.RandomHorizontalFlip(),
            T.ToTensor(),
            BrightnessContrast(0.2, 0.5),
            T.RandomApply([T.ColorJitter(saturation=0.2, hue=0.05)], p=0.3),
            T.Normalize(MEAN, STD),
        ])
    raise SystemExit("unknown pipeline " + name)


class Files(Dataset):
    def __init__(self, files, tf):
        self.files, self.tf = files, tf

    def __len__(self):
        return len(self.files)

    def __getitem__(self, i):
        with Image.open(self.files[i]) as im:
            return self.tf(im.convert("RGB")), torch.ones(1)


def worker_init(_):
    torch.set_num_threads(1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--list", required=True)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--pipeline", default="resize320")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    torch.set_num_threads(1)
    files = [l for l in open(a.list).read().split("\n") if l]
    ds = Files(files, transform(a.pipeline))
    nw = 0 if a.workers <= 1 else a.workers
    dl = DataLoader(ds, batch_size=32, shuffle=True, num_workers=nw, worker_init_fn=worker_init,
                    persistent_workers=nw > 0)
    best, best_cpu = 0.0, 0.0
    for _ in range(a.rounds):
        t0, c0 = time.perf_counter(), time.process_time()
        n = 0
        for x, _ in dl:
            n += x.shape[0]
        best = max(best, n / (time.perf_counter() - t0))
        best_cpu = max(best_cpu, n / (time.process_time() - c0))
    print(json.dumps({"rate": best, "cpurate": best_cpu}))


if __name__ == "__main__":
    main()
