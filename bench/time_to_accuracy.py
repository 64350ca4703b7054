"""Benchmark (not a test): seconds to a test-accuracy bar, `vislab classify train` defaults vs a plain PyTorch loop.

Run: ``.venv/bin/python bench/time_to_accuracy.py [--data shapes] [--bar 0.9]``

* vislab: ``classify train`` with its defaults (model small_cnn, fast in-memory path, precision auto,
  one-cycle SGD+Nesterov), given a budget of E epochs; E grows (2, 3, 4, 6, 8, 12) until the run's test
  accuracy clears the bar. Time = that run's training time (its validation passes and checkpoints included).
* plain: the same model, fresh, the way a course notebook trains it -- a torchvision-transform
  Dataset + DataLoader (random crop with padding 2, horizontal flip for photos, ToTensor-style scaling,
  Normalize), fp32, SGD momentum 0.9, lr 0.01, batch 64 -- evaluated on the same test split after each
  epoch (evaluation time excluded) until it clears the bar or reaches 40 epochs.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).parent))
from _common import Timer  # noqa: E402

from vislab.core.config import from_dict  # noqa: E402
from vislab.models.registry import create_model  # noqa: E402
from vislab.data.classify.source import DataConfig, load_dataset  # noqa: E402
from vislab.tasks import classify  # noqa: E402


class TutorialDataset(torch.utils.data.Dataset):
    """Per-sample transforms on uint8 images, as torchvision tutorials do."""

    def __init__(self, images, labels, mean, std, train, flip):
        from torchvision.transforms import v2 as T

        ops = [T.RandomCrop(images.shape[-1], padding=2)] + ([T.RandomHorizontalFlip()] if flip else []) if train else []
        self.tf = T.Compose([*ops, T.ToDtype(torch.float32, scale=True), T.Normalize(mean, std)])
        self.images, self.labels = images, labels

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        return self.tf(self.images[i]), self.labels[i]


@torch.no_grad()
def accuracy(model, loader) -> float:
    model.eval()
    hit = n = 0
    for x, y in loader:
        hit += int((model(x).argmax(1) == y).sum())
        n += len(y)
    model.train()
    return hit / n


def plain(data: str, bar: float, max_epochs: int = 40) -> tuple[float | None, int, float]:
    splits = load_dataset(from_dict(DataConfig, {"data": data}))
    tr, te = splits.train, splits.test
    mean, std = tr.stats()
    flip = tr.augment == "standard"
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=len(tr.classes), in_chans=tr.channels, stem="cifar")
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    train_dl = torch.utils.data.DataLoader(TutorialDataset(tr.images, tr.labels, mean, std, True, flip), batch_size=64, shuffle=True)
    test_dl = torch.utils.data.DataLoader(TutorialDataset(te.images, te.labels, mean, std, False, flip), batch_size=256)
    spent, acc = 0.0, 0.0
    for epoch in range(1, max_epochs + 1):
        with Timer() as t:
            for x, y in train_dl:
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad()
                loss.backward()
                opt.step()
        spent += t.seconds
        acc = accuracy(model, test_dl)
        if acc >= bar:
            return spent, epoch, acc
    return None, max_epochs, acc


def vislab_run(data: str, bar: float, budgets=(2, 3, 4, 6, 8, 12)) -> tuple[float | None, int, float]:
    acc = 0.0
    for epochs in budgets:
        with tempfile.TemporaryDirectory() as d:
            cfg = from_dict(classify.ClassifyConfig, {"data": data, "epochs": epochs, "out": d, "progress": "off",
                                                      "tensorboard": False, "report": False})
            run = classify.train(cfg)
            s = json.loads((run / "run.json").read_text())["summary"]
        acc = s["test_acc"]
        print(f"  vislab --epochs {epochs}: test acc {acc:.4f} in {s['train_seconds']:.1f}s")
        if acc >= bar:
            return s["train_seconds"], epochs, acc
    return None, budgets[-1], acc


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="shapes")
    ap.add_argument("--bar", type=float, default=0.9)
    args = ap.parse_args()
    print(f"time to {args.bar:.0%} test accuracy on {args.data}, model small_cnn, torch {torch.__version__}, {torch.get_num_threads()} threads")
    v_s, v_ep, v_acc = vislab_run(args.data, args.bar)
    p_s, p_ep, p_acc = plain(args.data, args.bar)
    fmt = lambda s, ep, acc: f"{s:.1f}s ({ep} epochs, acc {acc:.4f})" if s is not None else f"not reached (acc {acc:.4f} after {ep} epochs)"  # noqa: E731
    print(f"vislab defaults: {fmt(v_s, v_ep, v_acc)}")
    print(f"plain loop:      {fmt(p_s, p_ep, p_acc)}")
    if v_s and p_s:
        print(f"summary: time to {args.bar:.0%} on {args.data}: vislab {v_s:.1f}s vs plain {p_s:.1f}s, plain/vislab = {p_s / v_s:.2f}x faster (goal >= 2x)")
    else:
        print(f"summary: bar {args.bar:.0%} on {args.data} reached by vislab: {v_s is not None}, by plain: {p_s is not None}")


if __name__ == "__main__":
    main()
