#!/usr/bin/python3
"""Python side of bench/engine: one configuration per process, the same
work main.go's worker does, printed as one JSON line.

  /usr/bin/python3 bench/engine/bench.py MODEL MODE VARIANT STEPS THREADS [DEVICE BATCH SIZE]
MODE is train|infer, VARIANT fp32|bf16|fp16|cl (channels-last fp32)|bf16cl|fp16cl;
DEVICE cpu (default) or cuda; fp16 is CUDA autocast with GradScaler.
"""
import json
import os
import sys
import threading
import time

import torch
import torch.nn.functional as F
import torchvision

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "internal", "zoo", "models", "testdata"))
from gen_parity import Classifier, SENetTrunk  # noqa: E402  (Cadene-named SE-ResNeXt)

BATCH, SIZE, CLASSES = 32, 128, 1103


def build(name, classes=CLASSES):
    if name == "se_resnext50_32x4d":
        return Classifier(SENetTrunk([3, 4, 6, 3]), "last_linear", "avg", "last", num_classes=classes)
    return getattr(torchvision.models, name)(num_classes=classes)


def peak_rss_kb():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def main():
    name, mode, variant, steps, threads = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
    device = sys.argv[6] if len(sys.argv) > 6 else "cpu"
    batch = int(sys.argv[7]) if len(sys.argv) > 7 else BATCH
    size = int(sys.argv[8]) if len(sys.argv) > 8 else SIZE
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = build(name).to(device)
    x = torch.randn(batch, 3, size, size).to(device)
    y = (torch.rand(batch, CLASSES) < 0.01).float().to(device)
    cl = variant.endswith("cl")
    half = {"bf16": torch.bfloat16, "bf16cl": torch.bfloat16, "fp16": torch.float16, "fp16cl": torch.float16}.get(variant)
    dev_type = "cuda" if device.startswith("cuda") else "cpu"
    scaler = torch.cuda.amp.GradScaler() if half == torch.float16 else None
    if cl:
        model = model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    if mode == "train":
        model.train()
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9, foreach=False)

        def step():
            opt.zero_grad(set_to_none=True)
            with torch.autocast(dev_type, dtype=half or torch.bfloat16, enabled=half is not None):
                loss = F.binary_cross_entropy_with_logits(model(x), y)
            if scaler:
                scaler.scale(loss).backward()
                scaler.step(opt)
                scaler.update()
            else:
                loss.backward()
                opt.step()
            loss.item()  # waits for the device, as the Go side does
    else:
        model.eval()

        def step():
            with torch.inference_mode(), torch.autocast(dev_type, dtype=half or torch.bfloat16, enabled=half is not None):
                model(x).float().sum().item()
    step()
    step()
    import resource
    # A paired run (main.go -paired): say ready, start on "go", stop after
    # the step during which "stop" arrives, as the Go worker does.
    window = os.environ.get("IMET_BENCH_WINDOW")
    stop = threading.Event()
    if window:
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            sys.exit("paired worker: expected go on stdin")
        threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t0, c0 = time.perf_counter(), time.process_time()
    i = 0
    while (window and not stop.is_set()) or (not window and i < steps):
        step()
        i += 1
    steps = i
    dt, dc = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"images_per_s": batch * steps / dt, "images_per_cpu_s": batch * steps / dc,
                      "peak_rss_kb": peak_rss_kb(), "steps": steps,
                      "minor_faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0,
                      "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()
