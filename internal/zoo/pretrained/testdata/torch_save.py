"""Re-save a safetensors file with torch.save, as torchvision (zip format)
or Cadene's pretrainedmodels (legacy format) publish their weights.

    python3 torch_save.py IN.safetensors OUT.pth zip|legacy

The safetensors file is read with numpy alone (8-byte header length, JSON
header, raw little-endian data), so the test depends only on torch 1.13.
"""
import collections
import json
import struct
import sys

import numpy as np
import torch

src, dst, fmt = sys.argv[1], sys.argv[2], sys.argv[3]
with open(src, "rb") as f:
    raw = f.read()
(n,) = struct.unpack("<Q", raw[:8])
header = json.loads(raw[8:8 + n])
data = raw[8 + n:]
kinds = {"F32": np.float32, "I64": np.int64}
state = collections.OrderedDict()
for name in sorted(k for k in header if k != "__metadata__"):
    h = header[name]
    lo, hi = h["data_offsets"]
    a = np.frombuffer(data[lo:hi], dtype=kinds[h["dtype"]]).reshape(h["shape"])
    state[name] = torch.from_numpy(a.copy())
torch.save(state, dst, _use_new_zipfile_serialization=(fmt == "zip"))
