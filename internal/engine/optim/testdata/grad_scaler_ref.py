"""Live reference for optim.GradScaler: PyTorch's own torch.cuda.amp.GradScaler
driving a tiny AdamW problem on the CPU.

PyTorch 1.13 has CUDA kernels only for GradScaler's two ATen ops, and the class
disables itself without CUDA and asserts CUDA tensors. So this runs under
`python3 -O` (asserts off), tells the class CUDA is there, and replaces the two
ops by line-for-line transcriptions of their CUDA kernels
(aten/src/ATen/native/cuda/AmpKernels.cu). Everything else -- when grads are
unscaled, when the step is skipped, how update consumes the flag, the
state_dict -- is the class's own code.

stdin: {"w": [...], "xs": [[...], ...], "growth_interval": N, "max_norm": m}, the
elements of xs as strings ("+Inf" and "NaN" included).
stdout: one record per step: stepped, scale, growth_tracker, w.
"""
import json
import sys

import torch
import torch.cuda.amp.grad_scaler as grad_scaler

assert False, "run with python3 -O: GradScaler asserts CUDA tensors"


def non_finite_check_and_unscale(grads, found_inf, inv_scale):
    # _amp_foreach_non_finite_check_and_unscale_cuda_: flag any non-finite
    # element, multiply by inv_scale unless it is 1.
    inv = inv_scale.item()
    for g in grads:
        if not bool(torch.isfinite(g).all()):
            found_inf.fill_(1.0)
        if inv != 1.0:
            g.mul_(inv_scale)


def update_scale(scale, growth_tracker, found_inf, growth, backoff, interval):
    # amp_update_scale_cuda_kernel: float32 scale times a double factor.
    if found_inf.item():
        scale.fill_(float(torch.tensor(scale.item() * backoff, dtype=torch.float32)))
        growth_tracker.fill_(0)
    else:
        successful = growth_tracker.item() + 1
        if successful == interval:
            new = torch.tensor(scale.item() * growth, dtype=torch.float32)
            if bool(torch.isfinite(new)):
                scale.fill_(new.item())
            growth_tracker.fill_(0)
        else:
            growth_tracker.fill_(successful)
    return scale


grad_scaler.amp_definitely_not_available = lambda: False
torch._amp_foreach_non_finite_check_and_unscale_ = non_finite_check_and_unscale
torch._amp_update_scale_ = update_scale
torch.set_num_threads(1)

r = json.load(sys.stdin)
w = torch.tensor(r["w"], requires_grad=True)
opt = torch.optim.AdamW([w], lr=0.1, weight_decay=0.01)
scaler = torch.cuda.amp.GradScaler(growth_interval=r["growth_interval"])
out = []
for x in r["xs"]:
    opt.zero_grad(set_to_none=True)
    loss = (w * torch.tensor([float(v) for v in x])).sum() + (w * w).sum()
    scaler.scale(loss).backward()
    scaler.unscale_(opt)
    torch.nn.utils.clip_grad_norm_([w], r["max_norm"])
    before = w.detach().clone()
    scaler.step(opt)
    scaler.update()
    st = scaler.state_dict()
    out.append({"stepped": not torch.equal(before, w.detach()), "scale": st["scale"],
                "growth_tracker": st["_growth_tracker"], "w": w.detach().tolist()})
print(json.dumps(out))
