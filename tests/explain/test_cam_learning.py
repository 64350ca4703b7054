"""Learning test for explanations: does Grad-CAM point at the evidence?

Generated images (32x32, noisy background): the class is decided by *one* object (8x8) placed at a
random position (class 0: filled square, 1: hollow square, 2: plus sign); a distractor (a diagonal
bar, same size and contrast) is placed elsewhere. Training also sees a 4th class with the distractor
only. A tiny CNN trained for a few seconds must get Grad-CAM's peak for the true class inside the
class object's box on >= 90% of held-out images; the same CNN, randomly initialised, must not.

"Inside" is judged at the map's own resolution: Grad-CAM is computed on a 16x16 layer (one cell =
2x2 pixels), so the peak pixel may lie up to one cell (2 px) outside the box.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from vislab.explain.cam import ClassTarget, compute_maps, peak

SIZE, OBJ = 32, 8
CELL = 2  # pixels per cell of the 16x16 map Grad-CAM looks at


def _shape(kind: int) -> np.ndarray:
    """An OBJ x OBJ binary mask: 0 filled square, 1 hollow square, 2 plus, 3 diagonal bar (the distractor)."""
    m = np.zeros((OBJ, OBJ), bool)
    c = OBJ // 2
    if kind == 0:
        m[1:-1, 1:-1] = True
    elif kind == 1:
        m[:, :2] = m[:, -2:] = m[:2, :] = m[-2:, :] = True
    elif kind == 2:
        m[c - 1 : c + 1, :] = m[:, c - 1 : c + 1] = True
    else:
        i = np.arange(OBJ)
        m[i, i] = m[i[1:], i[:-1]] = True
    return m


def make_data(n: int, seed: int, background: bool = True) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Images (n, 3, 32, 32) in about [-1, 1], labels (n,), object boxes (n, 4) as (top, left, bottom, right), inclusive.

    With ``background``, a 4th class (label 3) has the distractor only: without it a network can
    learn the last object class as "neither of the others" and its evidence is then no object at all.
    """
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 0.25, (n, 3, SIZE, SIZE)).astype(np.float32)
    y = rng.integers(0, 4 if background else 3, n)
    boxes = np.zeros((n, 4), int)
    for i in range(n):
        while True:  # object and distractor boxes must not overlap
            (t, l), (dt, dl) = rng.integers(0, SIZE - OBJ + 1, (2, 2))
            if abs(t - dt) >= OBJ or abs(l - dl) >= OBJ:
                break
        for kind, (r, c) in ((y[i], (t, l)), (3, (dt, dl))) if y[i] < 3 else ((3, (dt, dl)),):
            colour = rng.uniform(0.6, 1.0, 3) * rng.choice([-1, 1])
            mask = _shape(kind)
            x[i, :, r : r + OBJ, c : c + OBJ][:, mask] = colour[:, None]
        boxes[i] = (t, l, t + OBJ - 1, l + OBJ - 1)
    return torch.from_numpy(x), torch.from_numpy(y), boxes


def tiny_cnn() -> nn.Module:
    """Four conv-BN-ReLU, the last at 16x16 (Grad-CAM looks at its BN, ``0.11``), global average pooling, linear."""
    return nn.Sequential(
        nn.Sequential(
            nn.Conv2d(3, 16, 3, padding=1), nn.BatchNorm2d(16), nn.ReLU(), nn.MaxPool2d(2),  # 32 -> 16
            nn.Conv2d(16, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(),  # (B, 32, 16, 16)
        ),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 4),
    )  # fmt: skip


def hit_rate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, boxes: np.ndarray, method: str = "gradcam") -> float:
    targets = [ClassTarget(int(c)) for c in y]
    maps, _ = compute_maps(model, x, method, targets=targets, layer="0.11")
    r, c = peak(maps).T
    t, l, b, rt = (boxes + np.array([-CELL, -CELL, CELL, CELL])).T
    return float(((r >= t) & (r <= b) & (c >= l) & (c <= rt)).mean())


def train_tiny_cnn(seed: int = 0) -> nn.Module:
    """Six epochs of Adam (one-cycle) on 1536 generated images: ~5 s on one core."""
    torch.manual_seed(seed)
    n_threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x, y, _ = make_data(1536, seed=1)
    model = tiny_cnn()
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    epochs, steps = 6, (len(x) + 63) // 64
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 1e-2, total_steps=epochs * steps)
    for _epoch in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 64):
            idx = perm[i : i + 64]
            loss = nn.functional.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
    torch.set_num_threads(n_threads)
    return model.eval()


@pytest.fixture(scope="module")
def trained() -> nn.Module:
    return train_tiny_cnn(0)


def test_trained_gradcam_peaks_inside_the_deciding_object(trained):
    x, y, boxes = make_data(200, seed=2, background=False)  # every held-out image has its deciding object
    with torch.no_grad():
        acc = float((trained(x).argmax(1) == y).float().mean())
    assert acc >= 0.9, f"the CNN did not learn the task (held-out accuracy {acc:.2f}); the CAM test needs it"
    rate = hit_rate(trained, x, y, boxes)
    assert rate >= 0.9, f"Grad-CAM peak inside the object box on {rate:.0%} of held-out images, expected >= 90%"


def test_random_model_gradcam_does_not_pass():
    torch.manual_seed(3)
    x, y, boxes = make_data(200, seed=2, background=False)  # every held-out image has its deciding object
    rate = hit_rate(tiny_cnn().eval(), x, y, boxes)
    assert rate < 0.9, f"a randomly initialised CNN's Grad-CAM hit {rate:.0%}: the test would not discriminate"
