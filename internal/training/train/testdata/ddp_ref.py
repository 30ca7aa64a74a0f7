"""Reference for TestDataParallelMatchesPyTorchDDP (distributed_pyref_test.go).

Trains torchvision's ResNet-18 with torch.nn.parallel.DistributedDataParallel
on two processes of a Gloo group on loopback, one thread each, and writes
what the Go side must reproduce with its own two ranks:

  OUT/init/NAME.bin, OUT/final/NAME.bin   state_dict tensors (raw, little-endian)
  OUT/state.json                          {name: [dtype, shape]} of those tensors
  OUT/x.bin, OUT/y.bin                    the images (N,3,S,S) and targets (N,C), float32
  OUT/ref.json                            every step's loss (mean over the ranks)

OUT/ref_in.json, written by the Go test first, gives the sizes, the
optimizer's settings and each epoch's sample order (imet's EpochOrder, so
both sides batch the same images). Each rank takes every second sample of
the order from its rank on, as DistributedSampler(shuffle=False) over that
order does, and imet's trainer does.

Usage: python3 ddp_ref.py OUT
"""

import json
import os
import socket
import sys

import numpy as np
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
import torch.nn.functional as F
import torchvision
from torch.nn.parallel import DistributedDataParallel as DDP

WORLD = 2


def save_state(state, out, sub):
    os.makedirs(os.path.join(out, sub), exist_ok=True)
    index = {}
    for name, t in state.items():
        a = t.detach().contiguous().numpy()
        index[name] = [str(a.dtype), list(a.shape)]
        a.astype(a.dtype.newbyteorder("<")).tofile(os.path.join(out, sub, name + ".bin"))
    return index


def model_for(cfg):
    return torchvision.models.resnet18(num_classes=cfg["classes"])


def rank_main(rank, cfg, out, port):
    torch.set_num_threads(1)
    store = dist.TCPStore("127.0.0.1", port, WORLD, rank == 0)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=WORLD)
    model = model_for(cfg)
    model.load_state_dict(torch.load(os.path.join(out, "init.pt")))
    ddp = DDP(model)  # broadcast_buffers=True, 25 MiB buckets: the defaults
    opt = torch.optim.AdamW(model.parameters(), lr=cfg["lr"], betas=(0.9, 0.999), eps=1e-8,
                            weight_decay=cfg["weight_decay"], foreach=False)
    n, c, s = cfg["n"], cfg["classes"], cfg["side"]
    x = np.fromfile(os.path.join(out, "x.bin"), dtype="<f4").reshape(n, 3, s, s)
    y = np.fromfile(os.path.join(out, "y.bin"), dtype="<f4").reshape(n, c)
    local = cfg["batch"] // WORLD
    per_epoch = n // cfg["batch"]
    losses, step = [], 0
    ddp.train()
    for order in cfg["orders"]:
        shard = order[rank::WORLD]
        for k in range(per_epoch):
            if step == cfg["steps"]:
                break
            idx = shard[k * local:(k + 1) * local]
            xb, yb = torch.from_numpy(x[idx]), torch.from_numpy(y[idx])
            loss = F.binary_cross_entropy_with_logits(ddp(xb), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            mean = torch.tensor([loss.item()], dtype=torch.float64)
            dist.all_reduce(mean)
            losses.append(mean.item() / WORLD)
            step += 1
    if rank == 0:
        save_state(model.state_dict(), out, "final")
        with open(os.path.join(out, "ref.json"), "w") as f:
            json.dump({"losses": losses}, f)
    dist.barrier()
    dist.destroy_process_group()


def main(out):
    with open(os.path.join(out, "ref_in.json")) as f:
        cfg = json.load(f)
    torch.manual_seed(cfg["seed"])
    model = model_for(cfg)
    # BatchNorm starts at 1 and 0; draw its affine weights and running
    # statistics so that a tensor loaded under the wrong name shows.
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.1, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    torch.save(model.state_dict(), os.path.join(out, "init.pt"))
    index = save_state(model.state_dict(), out, "init")
    with open(os.path.join(out, "state.json"), "w") as f:
        json.dump(index, f)
    rng = np.random.default_rng(cfg["seed"])
    n, c, s = cfg["n"], cfg["classes"], cfg["side"]
    rng.standard_normal((n, 3, s, s), dtype=np.float32).astype("<f4").tofile(os.path.join(out, "x.bin"))
    (rng.random((n, c)) < 0.3).astype("<f4").tofile(os.path.join(out, "y.bin"))
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    mp.spawn(rank_main, args=(cfg, out, port), nprocs=WORLD)


if __name__ == "__main__":
    main(sys.argv[1])
