#!/usr/bin/python3
"""Golden values for internal/vision/augment from independent implementations.

Run with Debian's python3 (torch 1.13, torchvision 0.14):
    /usr/bin/python3 gen_golden.py > golden.json

- resize: torch.nn.functional.interpolate(bilinear, align_corners=False,
  antialias=False), the same half-pixel convention as OpenCV's resize that
  albumentations uses (edges clamp, i.e. replicate).
- blur: torchvision.transforms.functional.gaussian_blur (reflect padding,
  which is OpenCV's BORDER_REFLECT_101).
- hsv: Python's colorsys, shifts in OpenCV 8-bit units (hue 0..180).
- normalize: torchvision.transforms.Normalize on x/255.
"""
import colorsys
import json

import numpy as np
import torch
import torch.nn.functional as F
import torchvision.transforms.functional as TF
from torchvision import transforms

rng = np.random.RandomState(7)
out = {"resize": [], "blur": [], "hsv": [], "normalize": []}

for (h, w, oh, ow) in [(5, 7, 3, 11), (6, 4, 9, 5), (8, 8, 3, 3)]:
    img = rng.randint(0, 256, size=(h, w, 3)).astype(np.uint8)
    t = torch.from_numpy(img).permute(2, 0, 1)[None].float()
    r = F.interpolate(t, size=(oh, ow), mode="bilinear", align_corners=False)
    out["resize"].append({"w": w, "h": h, "ow": ow, "oh": oh,
                          "pix": img.reshape(-1).tolist(),
                          "want": r[0].reshape(-1).tolist()})  # CHW

for (h, w, k, sigma) in [(6, 9, 3, 0.8), (10, 7, 5, 1.3)]:
    img = rng.randint(0, 256, size=(3, h, w)).astype(np.float32)
    b = TF.gaussian_blur(torch.from_numpy(img), kernel_size=[k, k], sigma=[sigma, sigma])
    out["blur"].append({"w": w, "h": h, "k": k, "sigma": sigma,
                        "chw": img.reshape(-1).tolist(), "want": b.reshape(-1).tolist()})

for _ in range(40):
    rgb = rng.randint(0, 256, size=3).tolist()
    dh, ds, dv = rng.uniform(-30, 30), rng.uniform(-40, 40), rng.uniform(-40, 40)
    hh, ss, vv = colorsys.rgb_to_hsv(*[c / 255 for c in rgb])
    hh = ((hh * 360 + 2 * dh) % 360) / 360
    ss = min(max(ss * 255 + ds, 0), 255) / 255
    vv = min(max(vv * 255 + dv, 0), 255) / 255
    want = [c * 255 for c in colorsys.hsv_to_rgb(hh, ss, vv)]
    out["hsv"].append({"rgb": rgb, "shift": [dh, ds, dv], "want": want})

img = rng.randint(0, 256, size=(3, 2, 2)).astype(np.float32)
n = transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])(torch.from_numpy(img) / 255)
out["normalize"].append({"chw": img.reshape(-1).tolist(), "want": n.reshape(-1).tolist()})

print(json.dumps(out))
