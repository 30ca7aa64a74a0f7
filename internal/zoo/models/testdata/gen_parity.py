#!/usr/bin/python3
"""Reference logits, loss and gradients of imet's zoo, computed by PyTorch
itself (torchvision 0.14 for ResNets; for SE-ResNeXt the SENet definition
below, written from the architecture of Cadene's pretrainedmodels senet.py,
with the same module names).

Weights are not stored: both sides fill every tensor from the same
deterministic formula (detinit below, mirrored by detInit in parity_test.go),
so a result holds only a few numbers per model.

  /usr/bin/python3 gen_parity.py OUT [--threads N] [--cases a,b,...]
      every result (eval and train logits, loss, gradients): what
      TestParityLive runs into a temporary directory, on the machine under
      test, with the thread count the Go side uses.
  /usr/bin/python3 gen_parity.py --committed internal/zoo/models/testdata/parity.json
      only what any x86-64 CPU reproduces: eval-mode logits, the stem
      BatchNorm's running mean after one training forward, state and
      parameter names. Train-mode logits, the loss and gradients are not
      committed: BatchNorm over a batch of 2 with 2x2 maps in the last stages
      amplifies rounding, so another CPU's kernels (AVX2 against AVX-512
      oneDNN, OpenBLAS's Zen against SkylakeX) or another thread count move
      ResNet-50's train logits by 4-25% of their scale and its gradient
      norms by up to 13 times their value (measured on Intel AVX-512 with
      ONEDNN_MAX_CPU_ISA, OPENBLAS_CORETYPE and ATEN_CPU_CAPABILITY), while
      eval logits move by under 5e-6.
"""
import argparse
import json
import math
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision

NUM_CLASSES = 10


def fnv1a(s):
    h = 0x811C9DC5
    for b in s.encode():
        h ^= b
        h = (h * 0x01000193) & 0xFFFFFFFF
    return h


def detvalues(name, shape):
    n = int(np.prod(shape)) if len(shape) else 1
    phase = fnv1a(name) / 2**32 * 2 * math.pi
    s = np.sin(phase + 1.618034 * np.arange(n, dtype=np.float64))
    if name.endswith("running_var"):
        v = 1 + 0.25 * (1 + s)
    elif name.endswith("running_mean"):
        v = 0.1 * s
    elif len(shape) > 1:
        v = s * 2 / math.sqrt(n / shape[0])
    elif name.endswith("weight"):
        v = 1 + 0.1 * s
    else:
        v = 0.1 * s
    return v.astype(np.float32).reshape(shape)


def detinit(model):
    with torch.no_grad():
        for k, t in model.state_dict().items():
            if k.endswith("num_batches_tracked"):
                t.zero_()
            else:
                t.copy_(torch.from_numpy(detvalues(k, list(t.shape))))


def detinput(shape):
    n = int(np.prod(shape))
    i = np.arange(n, dtype=np.float64)
    return torch.from_numpy((np.sin(0.1 + 0.31 * i) * np.cos(0.0007 * i)).astype(np.float32).reshape(shape))


def dettarget(shape):
    n = int(np.prod(shape))
    return torch.tensor([1.0 if (i * 7) % 3 == 0 else 0.0 for i in range(n)]).reshape(shape)


# ---- SE-ResNeXt (module names as Cadene's pretrainedmodels) ----

class SEModule(nn.Module):
    def __init__(self, channels, reduction):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.fc1 = nn.Conv2d(channels, channels // reduction, kernel_size=1, padding=0)
        self.relu = nn.ReLU(inplace=True)
        self.fc2 = nn.Conv2d(channels // reduction, channels, kernel_size=1, padding=0)
        self.sigmoid = nn.Sigmoid()

    def forward(self, x):
        s = self.sigmoid(self.fc2(self.relu(self.fc1(self.avg_pool(x)))))
        return x * s


class SEResNeXtBottleneck(nn.Module):
    expansion = 4

    def __init__(self, inplanes, planes, groups, reduction, stride=1, downsample=None, base_width=4):
        super().__init__()
        width = math.floor(planes * (base_width / 64)) * groups
        self.conv1 = nn.Conv2d(inplanes, width, kernel_size=1, bias=False, stride=1)
        self.bn1 = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, width, kernel_size=3, stride=stride, padding=1, groups=groups, bias=False)
        self.bn2 = nn.BatchNorm2d(width)
        self.conv3 = nn.Conv2d(width, planes * 4, kernel_size=1, bias=False)
        self.bn3 = nn.BatchNorm2d(planes * 4)
        self.relu = nn.ReLU(inplace=True)
        self.se_module = SEModule(planes * 4, reduction=reduction)
        self.downsample = downsample

    def forward(self, x):
        residual = x
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.relu(self.bn2(self.conv2(out)))
        out = self.bn3(self.conv3(out))
        if self.downsample is not None:
            residual = self.downsample(x)
        return self.relu(self.se_module(out) + residual)


class SENetTrunk(nn.Module):
    def __init__(self, layers, groups=32, reduction=16, width=64, base_width=4):
        super().__init__()
        self.inplanes = width
        self.layer0 = nn.Sequential(OrderedDict([
            ("conv1", nn.Conv2d(3, width, kernel_size=7, stride=2, padding=3, bias=False)),
            ("bn1", nn.BatchNorm2d(width)),
            ("relu1", nn.ReLU(inplace=True)),
            ("pool", nn.MaxPool2d(3, stride=2, ceil_mode=True)),
        ]))
        self.layer1 = self._make_layer(width, layers[0], groups, reduction, 1, base_width)
        self.layer2 = self._make_layer(width * 2, layers[1], groups, reduction, 2, base_width)
        self.layer3 = self._make_layer(width * 4, layers[2], groups, reduction, 2, base_width)
        self.layer4 = self._make_layer(width * 8, layers[3], groups, reduction, 2, base_width)
        self.channels = (width * 16, width * 32)

    def _make_layer(self, planes, blocks, groups, reduction, stride, base_width):
        downsample = None
        if stride != 1 or self.inplanes != planes * 4:
            downsample = nn.Sequential(
                nn.Conv2d(self.inplanes, planes * 4, kernel_size=1, stride=stride, padding=0, bias=False),
                nn.BatchNorm2d(planes * 4))
        layers = [SEResNeXtBottleneck(self.inplanes, planes, groups, reduction, stride, downsample, base_width)]
        self.inplanes = planes * 4
        for _ in range(1, blocks):
            layers.append(SEResNeXtBottleneck(self.inplanes, planes, groups, reduction, base_width=base_width))
        return nn.Sequential(*layers)

    def stages(self, x):
        x = self.layer2(self.layer1(self.layer0(x)))
        f3 = self.layer3(x)
        return f3, self.layer4(f3)


class TorchvisionTrunk(nn.Module):
    """A torchvision ResNet's own modules, registered under the same names."""

    def __init__(self, arch):
        super().__init__()
        m = getattr(torchvision.models, arch)()
        for n in ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]:
            setattr(self, n, getattr(m, n))
        c4 = m.fc.in_features
        self.channels = (c4 // 2, c4)

    def stages(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer2(self.layer1(x))
        f3 = self.layer3(x)
        return f3, self.layer4(f3)


class Classifier(nn.Module):
    """imet's shared head (models.Assemble) on a trunk."""

    def __init__(self, trunk, head, pool, features, num_classes=NUM_CLASSES):
        super().__init__()
        self.trunk, self.pool, self.features, self.head = trunk, pool, features, head
        c3, c4 = trunk.channels
        fin = c4 + (c3 if features == "last2" else 0)
        fin *= 2 if pool == "concat" else 1
        setattr(self, head, nn.Linear(fin, num_classes))

    def _pool(self, x):
        if self.pool == "max":
            return F.adaptive_max_pool2d(x, 1).flatten(1)
        if self.pool == "concat":
            return torch.cat([F.adaptive_avg_pool2d(x, 1).flatten(1), F.adaptive_max_pool2d(x, 1).flatten(1)], 1)
        return F.adaptive_avg_pool2d(x, 1).flatten(1)

    def forward(self, x):
        f3, f4 = self.trunk.stages(x)
        h = self._pool(f4)
        if self.features == "last2":
            h = torch.cat([self._pool(f3), h], 1)
        return getattr(self, self.head)(h)

    def named_state(self):
        # Strip the "trunk." prefix: the names a pretrained file uses.
        return {k[len("trunk."):] if k.startswith("trunk.") else k: v for k, v in self.state_dict().items()}


def run(case, committed):
    arch, pool, features = case["arch"], case["pool"], case["features"]
    if arch.startswith("resnet"):
        trunk, head = TorchvisionTrunk(arch), "fc"
    else:
        c = case["senet"]
        trunk, head = SENetTrunk(c["blocks"], c["groups"], c["reduction"], c["width"], c["base_width"]), "last_linear"
    model = Classifier(trunk, head, pool, features)
    state = model.named_state()
    with torch.no_grad():
        for k, t in state.items():
            if k.endswith("num_batches_tracked"):
                t.zero_()
            else:
                t.copy_(torch.from_numpy(detvalues(k, list(t.shape))))
    x = detinput([2, 3, 64, 64])
    y = dettarget([2, NUM_CLASSES])
    model.eval()
    with torch.no_grad():
        eval_logits = model(x)
    model.train()
    logits = model(x)
    loss = F.binary_cross_entropy_with_logits(logits, y)
    loss.backward()
    params = dict((k[len("trunk."):] if k.startswith("trunk.") else k, p) for k, p in model.named_parameters())
    state = model.named_state()
    bn1 = float(state["layer0.bn1.running_mean" if head == "last_linear" else "bn1.running_mean"].sum())
    if committed:
        # 8 significant digits: float32 holds about 7.
        g8 = lambda v: float("%.8g" % float(v))
        return {
            "case": case,
            "eval_logits": [g8(v) for v in eval_logits.flatten()],
            "bn1_running_mean_sum": g8(bn1),
            "num_state": len(state),
            "params": sorted(params),
        }
    return {
        "case": case,
        "eval_logits": eval_logits.flatten().tolist(),
        "train_logits": logits.detach().flatten().tolist(),
        "loss": float(loss),
        # Every gradient's L1 norm, and the first elements of the stem's and
        # the head's: enough to see any wrong gradient.
        "grad_l1": {k: float(p.grad.abs().sum()) for k, p in params.items()},
        "grad_first": {k: p.grad.flatten()[:4].tolist() for k, p in params.items()
                       if k in ("conv1.weight", "layer0.conv1.weight", head + ".weight", head + ".bias")},
        "bn1_running_mean_sum": bn1,
        "num_state": len(state),
        "params": sorted(params),
    }


SX = lambda blocks: {"blocks": blocks, "groups": 32, "reduction": 16, "width": 64, "base_width": 4}
CASES = [
    {"name": "resnet18", "arch": "resnet18", "pool": "avg", "features": "last"},
    {"name": "resnet18_concat_last2", "arch": "resnet18", "pool": "concat", "features": "last2"},
    {"name": "resnet34", "arch": "resnet34", "pool": "avg", "features": "last"},
    {"name": "resnet50", "arch": "resnet50", "pool": "avg", "features": "last"},
    {"name": "resnet101", "arch": "resnet101", "pool": "max", "features": "last"},
    {"name": "se_resnext_small", "arch": "se_resnext_small", "pool": "concat", "features": "last2",
     "senet": {"blocks": [1, 2, 1, 1], "groups": 4, "reduction": 4, "width": 16, "base_width": 8}},
    {"name": "se_resnext50_32x4d", "arch": "se_resnext50_32x4d", "pool": "avg", "features": "last",
     "senet": SX([3, 4, 6, 3])},
    {"name": "se_resnext101_32x4d", "arch": "se_resnext101_32x4d", "pool": "avg", "features": "last2",
     "senet": SX([3, 4, 23, 3])},
]

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="JSON file to write")
    ap.add_argument("--threads", type=int, default=1, help="intra-op threads (match the Go side)")
    ap.add_argument("--cases", help="comma-separated case names (default all)")
    ap.add_argument("--committed", action="store_true", help="only the CPU-independent numbers")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    cases = CASES
    if a.cases:
        want = a.cases.split(",")
        unknown = sorted(set(want) - {c["name"] for c in CASES})
        if unknown:
            ap.error("unknown cases: " + ", ".join(unknown))
        cases = [c for c in CASES if c["name"] in want]
    out = {"torch": torch.__version__, "torchvision": torchvision.__version__, "num_classes": NUM_CLASSES,
           "threads": torch.get_num_threads(), "results": [run(c, a.committed) for c in cases]}
    with open(a.out, "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
