#!/usr/bin/env python3
"""PyTorch reference for tapegrad-nn's optimizers (crates/nn/tests/fixtures/optim.json).

One float32 parameter vector of 37 elements (torch.manual_seed(seed); torch.rand(37) * 2 - 1,
so both a vectorised body and a scalar tail of PyTorch's CPU kernels are exercised) is
updated for `steps` steps by each optimizer configuration below, with the gradient of
step s given (torch.randn(37) drawn after the parameter, one per step). Written: the
initial parameter, the gradients, and the parameter after every step (exact float32
values as Python floats). torch.optim with foreach=False (the single-tensor path).

Command (from the repository root, with a Python that has torch 2.15):
    python scripts/make_optim_reference.py > crates/nn/tests/fixtures/optim.json
"""

import json

import torch

CONFIGS = [
    ("sgd", dict(lr=0.1)),
    ("sgd", dict(lr=0.05, weight_decay=0.1)),
    ("sgd", dict(lr=0.1, momentum=0.9)),
    ("sgd", dict(lr=0.1, momentum=0.8, dampening=0.3, weight_decay=0.01)),
    ("sgd", dict(lr=0.1, momentum=0.9, nesterov=True)),
    ("sgd", dict(lr=0.03, momentum=0.5, nesterov=True, weight_decay=0.2)),
    ("adam", dict(lr=0.01)),
    ("adam", dict(lr=0.1, betas=(0.8, 0.99), eps=1e-6)),
    ("adam", dict(lr=0.01, weight_decay=0.1)),
    ("adam", dict(lr=0.003, betas=(0.3, 0.7), weight_decay=0.5)),
    ("adamw", dict(lr=0.01)),
    ("adamw", dict(lr=0.05, weight_decay=0.1)),
    ("adamw", dict(lr=0.1, betas=(0.5, 0.9), eps=1e-3, weight_decay=0.3)),
    ("adam", dict(lr=0.01, betas=(0.0, 0.0))),
]
CLASSES = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}


def main(seed=3, n=37, steps=6):
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    p0 = torch.rand(n) * 2 - 1
    grads = [torch.randn(n) for _ in range(steps)]
    cases = []
    for kind, kw in CONFIGS:
        p = torch.nn.Parameter(p0.clone())
        opt = CLASSES[kind]([p], foreach=False, **kw)
        trajectory = []
        for g in grads:
            opt.zero_grad()
            p.grad = g.clone()
            opt.step()
            trajectory.append(p.detach().clone().tolist())
        hyper = {k: list(v) if isinstance(v, tuple) else v for k, v in kw.items()}
        cases.append({"optimizer": kind, "hyper": hyper, "params": trajectory})
    out = {"initial": p0.tolist(), "grads": [g.tolist() for g in grads], "cases": cases}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
