#!/usr/bin/python3
"""Companion of bench/weights: writes a seeded torchvision state dict in
both torch.save formats (write DIR ARCH), or times torch.load of a file
(time FILE REPEATS), printing the best time in seconds."""
import sys
import time

import torch

if sys.argv[1] == "write":
    import torchvision
    out, arch = sys.argv[2], sys.argv[3]
    torch.manual_seed(0)
    sd = getattr(torchvision.models, arch)().state_dict()
    torch.save(sd, f"{out}/{arch}_zip.pth")
    torch.save(sd, f"{out}/{arch}_legacy.pth", _use_new_zipfile_serialization=False)
else:
    path, n = sys.argv[2], int(sys.argv[3])
    best = float("inf")
    for _ in range(n):
        t = time.perf_counter()
        sd = torch.load(path, map_location="cpu")
        # Touch the data as the Go reader does (it returns dense float32).
        s = sum(float(v.float().sum()) for v in sd.values())
        best = min(best, time.perf_counter() - t)
    print(best)
