#!/usr/bin/python3
"""Writes the weight-file fixtures internal/zoo/weights tests read.

Run with Debian's torch (/usr/bin/python3, torch 1.13):
    /usr/bin/python3 scripts/golden/torch_weights.py internal/zoo/weights/testdata

Each checkpoint is written twice, in torch.save's zip format and in the
legacy format (_use_new_zipfile_serialization=False, as Cadene's
pretrainedmodels files are), plus one .safetensors file written by the small
spec-following writer below (the safetensors package is not needed).
expected.json records, per file, what a reader must return: for every
tensor its shape, its dtype in the file and its values as float32.
"""
import collections
import json
import os
import struct
import sys

import torch

out = sys.argv[1] if len(sys.argv) > 1 else "internal/zoo/weights/testdata"
os.makedirs(out, exist_ok=True)
torch.manual_seed(0)

# A real module state dict: an OrderedDict with _metadata, BN buffers with
# an int64 num_batches_tracked.
net = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3, bias=False), torch.nn.BatchNorm2d(4))
net[1].running_mean.uniform_(-1, 1)
net[1].running_var.uniform_(0.5, 2)
state = net.state_dict()

base = torch.randn(4, 6)
extra = collections.OrderedDict()
extra["half"] = torch.randn(5).half()
extra["bf16"] = torch.randn(2, 3).bfloat16()
extra["double"] = torch.randn(2, 2, dtype=torch.float64)
extra["ints"] = torch.tensor([1, -2, 300000, 7], dtype=torch.int32)
extra["bytes"] = torch.tensor([0, 7, 255], dtype=torch.uint8)
extra["transposed"] = torch.randn(3, 5).t()            # non-contiguous
extra["strided"] = torch.randn(6, 4)[::2, 1:]          # offset + steps
extra["shared_a"] = base[0]                             # two views of one
extra["shared_b"] = base[1:3, ::2]                      # storage
extra["expanded"] = torch.randn(3, 1).expand(3, 4)      # stride 0
extra["scalar"] = torch.tensor(3.25)
extra["empty"] = torch.zeros(0, 3)
for k, v in extra.items():
    state[k] = v

# A training checkpoint as DataParallel users write it.
ckpt = {
    "epoch": 3,
    "arch": "tiny",
    "best_score": 0.5,
    "state_dict": collections.OrderedDict(("module." + k, v) for k, v in net.state_dict().items()),
    "optimizer": {"state": {0: {"momentum_buffer": torch.ones(2)}}, "param_groups": [{"lr": 0.1, "params": [0]}]},
}

# Not a state dict: a parameter and a nested dict, read by flattening.
misc = {"p": torch.nn.Parameter(torch.randn(2, 2)), "nested": {"q": torch.arange(3.0)}, "note": "x"}


def describe(tensors):
    d = {}
    for k, v in tensors.items():
        d[k] = {
            "shape": list(v.shape),
            "dtype": str(v.dtype).replace("torch.", ""),
            "data": [float(x) for x in v.detach().float().contiguous().view(-1).tolist()],
        }
    return d


expected = {}
for name, obj, flat in [
    ("plain", state, state),
    ("ckpt", ckpt, ckpt["state_dict"]),
    ("misc", misc, {"p": misc["p"], "nested.q": misc["nested"]["q"]}),
]:
    torch.save(obj, os.path.join(out, name + "_zip.pth"))
    torch.save(obj, os.path.join(out, name + "_legacy.pth"), _use_new_zipfile_serialization=False)
    # Round-trip through torch.load to be sure the files are what we think.
    for fmt in ("zip", "legacy"):
        back = torch.load(os.path.join(out, f"{name}_{fmt}.pth"))
        expected[f"{name}_{fmt}.pth"] = describe(flat)

# safetensors, following https://github.com/huggingface/safetensors#format
SAFE_DTYPES = {torch.float32: "F32", torch.float16: "F16", torch.bfloat16: "BF16",
               torch.float64: "F64", torch.int64: "I64", torch.int32: "I32", torch.uint8: "U8"}
safe = collections.OrderedDict()
safe["stem.conv.weight"] = torch.randn(2, 3, 1, 1)
safe["half"] = torch.randn(4).half()
safe["bf16"] = torch.randn(3).bfloat16()
safe["double"] = torch.randn(2, dtype=torch.float64)
safe["count"] = torch.tensor(12345, dtype=torch.int64)


def tensor_bytes(t):
    t = t.contiguous()
    if t.dtype == torch.bfloat16:
        t = t.view(torch.int16)
    return t.numpy().tobytes()


header, blobs, off = {"__metadata__": {"format": "pt"}}, [], 0
for k, v in safe.items():
    b = tensor_bytes(v)
    header[k] = {"dtype": SAFE_DTYPES[v.dtype], "shape": list(v.shape), "data_offsets": [off, off + len(b)]}
    blobs.append(b)
    off += len(b)
h = json.dumps(header, separators=(",", ":")).encode()
h += b" " * ((8 - len(h) % 8) % 8)
with open(os.path.join(out, "tiny.safetensors"), "wb") as f:
    f.write(struct.pack("<Q", len(h)))
    f.write(h)
    for b in blobs:
        f.write(b)
expected["tiny.safetensors"] = describe(safe)

with open(os.path.join(out, "expected.json"), "w") as f:
    json.dump(expected, f, indent=0, sort_keys=True)
print("wrote", sorted(expected))
