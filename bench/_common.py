"""Shared helpers of the benchmarks (not tests): timing and the plain PyTorch baselines."""

from __future__ import annotations

import time

import torch
import torch.nn.functional as F


def plain_train_epoch(model, images_u8, labels, batch_size, optimizer, mean, std, *, channels_last=False, autocast=None, perm=None):
    """A minimal hand-written training epoch on in-memory uint8 images: what a careful user writes."""
    model.train()
    n = len(labels)
    perm = torch.randperm(n) if perm is None else perm
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    seen = 0
    for i in range(0, n - batch_size + 1, batch_size):
        idx = perm[i : i + batch_size]
        x = (images_u8[idx].float() / 255 - m) / s
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        y = labels[idx]
        ctx = torch.autocast("cpu", dtype=autocast) if autocast else torch.autocast("cpu", enabled=False)
        with ctx:
            out = model(x)
        loss = F.cross_entropy(out.float(), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        seen += len(idx)
    return seen


class Timer:
    def __enter__(self):
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *a):
        self.seconds = time.perf_counter() - self.t0
