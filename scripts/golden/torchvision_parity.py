#!/usr/bin/python3
"""Reference outputs for the zoo's torchvision architectures.

    /usr/bin/python3 scripts/golden/torchvision_parity.py ARCH OUTDIR [SIZE]

ARCH is mobilenet_v2, densenet121, densenet161 or inception_v3. Builds the
torchvision 0.14 model with seeded random weights (BatchNorm statistics and
affine parameters randomised too, so evaluation mode is a real test),
and writes, in formats internal/zoo/weights reads:

  OUTDIR/weights.pth   the state dict. densenet121 uses the legacy
                       'norm.1'-style keys of torchvision's published files;
                       densenet161 and inception_v3 are written in the legacy
                       (non-zip) torch.save format, the others in the zip one.
  OUTDIR/io.pth        input (N,3,S,S), targets, eval-mode logits; after a
                       training-mode forward (dropout off) of
                       binary_cross_entropy_with_logits (mean): its loss,
                       logits and the updated BatchNorm running statistics
                       ("state.<name>"); then, from an evaluation-mode
                       forward/backward of the same loss (a fine-tuning step
                       with frozen BatchNorm statistics), the loss
                       ("loss_eval") and every parameter's gradient
                       ("grad.<name>").

Why gradients are taken in evaluation mode: with random weights, batch 2
and feature maps of 2x2 at the end, training-mode BatchNorm backward is so
ill-conditioned that torch itself, run with 1 and then 2 threads, gives
gradients differing by 200% of their scale; in evaluation mode the same
comparison agrees to 3e-6, so there the reference means something.

The Go parity tests run this into a temporary directory, so no large
fixture is committed; they skip when torch is missing.
"""
import collections
import re
import sys

import torch
import torchvision

arch, out = sys.argv[1], sys.argv[2]
# Inception runs at 107px, the smallest input that leaves 2x2 maps (not
# 1x1) at its end: BatchNorm over 1x1 maps of a small batch is chaotic.
size = int(sys.argv[3]) if len(sys.argv) > 3 else (107 if arch == "inception_v3" else 64)
torch.manual_seed(0)
torch.set_num_threads(1)  # the Go side runs one thread too: same kernels, same order

classes = 7
if arch == "mobilenet_v2":
    m = torchvision.models.mobilenet_v2(num_classes=classes)
elif arch == "densenet121":
    m = torchvision.models.densenet121(num_classes=classes)
elif arch == "densenet161":
    m = torchvision.models.densenet161(num_classes=classes)
elif arch == "inception_v3":
    # transform_input=True is what the pretrained weights expect.
    m = torchvision.models.inception_v3(num_classes=classes, aux_logits=False, init_weights=True,
                                        transform_input=True)
else:
    raise SystemExit("unknown arch " + arch)

batch = 4 if arch == "inception_v3" else 2
bns = [mod for mod in m.modules() if isinstance(mod, torch.nn.BatchNorm2d)]
with torch.no_grad():
    for mod in m.modules():
        if isinstance(mod, torch.nn.Dropout):
            mod.p = 0.0  # train-mode outputs must be deterministic
    # Calibrate the running statistics on a random batch, so that in
    # evaluation mode activations keep a sane scale through 100+ layers
    # (random statistics make them explode or vanish, and gradients then
    # hinge on near-zero ReLU inputs), then randomise the affine
    # parameters so that they are not the trivial 1 and 0.
    for mod in bns:
        mod.reset_running_stats()
        mod.momentum = None
    m.train()
    m(torch.randn(batch * 2, 3, size, size))
    for mod in bns:
        mod.momentum = 0.1
        mod.weight.uniform_(0.5, 1.5)
        mod.bias.uniform_(-0.2, 0.2)

state = m.state_dict()
fmt_zip = arch in ("mobilenet_v2", "densenet121")
if arch == "densenet121":
    # As torchvision's published file: pre-0.4 names, no batch counters.
    legacy = collections.OrderedDict()
    for k, v in state.items():
        if not k.endswith("num_batches_tracked"):
            legacy[re.sub(r"(denselayer\d+\.(?:norm|relu|conv))([12])\.", r"\1.\2.", k)] = v
    state = legacy
torch.save(state, out + "/weights.pth", _use_new_zipfile_serialization=fmt_zip)

x = torch.randn(batch, 3, size, size)
y = (torch.rand(batch, classes) < 0.3).float()
io = collections.OrderedDict()
io["input"] = x
io["targets"] = y
m.eval()
with torch.no_grad():
    io["logits_eval"] = m(x)
m.train()
with torch.no_grad():
    logits = m(x)
    io["logits_train"] = logits
    io["loss"] = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
m.eval()
loss = torch.nn.functional.binary_cross_entropy_with_logits(m(x), y)
loss.backward()
io["loss_eval"] = loss.detach()
for k, p in m.named_parameters():
    io["grad." + k] = p.grad
for k, b in m.named_buffers():
    io["state." + k] = b
torch.save(io, out + "/io.pth")
print(arch, size, "loss", float(loss))
