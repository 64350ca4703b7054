"""Benchmark (not a test): a fast style network's forward pass vs Gatys et al.'s optimisation of the same image.

Run: ``.venv/bin/python bench/style_speed.py [--size 128] [--steps 300] [--features random] [--threads N]``

Both restyle scikit-image's astronaut (resized to ``--size`` on its longer side) as scikit-image's coffee:

1. Baseline: :func:`vislab.tasks.style.gatys.transfer` with its defaults (L-BFGS, ``--steps`` gradient evaluations)
   in the ``--features`` network (``random``: the randomly initialised multi-scale net, which needs no weights file;
   ``vgg19:FILE`` for the paper's network). One timed run: it lasts seconds to minutes.
2. vislab's ``transformer_net`` (Johnson et al.'s layout, ``--width`` 32, 5 residual blocks), random weights (speed
   does not depend on them), in eval mode under ``torch.no_grad`` on the prepared float tensor: the median of 5
   forward passes after a warm-up.

The ratio printed last is how many fast-network restylings fit in the time of one optimisation (the issue's bar: at
least 100x). What the fast network gives up for that speed (its style loss against the optimisation's) is
``tests/tasks/style/test_style_network.py``'s, not this benchmark's.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from PIL import Image
from skimage import data as skdata

from vislab.models.registry import create_model
from vislab.tasks.shared.features import load_feature_net
from vislab.tasks.style import gatys


def _image(a: np.ndarray, side: int) -> torch.Tensor:
    im = Image.fromarray(a)
    f = side / max(im.size)
    im = im.resize((max(1, round(im.width * f)), max(1, round(im.height * f))), Image.BICUBIC)
    return torch.from_numpy(np.asarray(im).copy()).permute(2, 0, 1)[None].float() / 127.5 - 1


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=128)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--features", default="random")
    p.add_argument("--width", type=int, default=32)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    content, style = _image(skdata.astronaut(), a.size), _image(skdata.coffee(), a.size)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; content {tuple(content.shape[-2:])}, "
          f"style {tuple(style.shape[-2:])}, features {a.features}")

    net = load_feature_net(a.features)
    t0 = time.perf_counter()
    res = gatys.transfer(content, style, net, steps=a.steps, progress="off")
    t_opt = time.perf_counter() - t0
    print(f"[gatys] {a.steps} L-BFGS steps: {t_opt:.2f} s")

    model = create_model("transformer_net", in_chans=3, width=a.width).eval()
    with torch.no_grad():
        model(content)
        times = []
        for _ in range(5):
            t0 = time.perf_counter()
            model(content)
            times.append(time.perf_counter() - t0)
    t_fast = statistics.median(times)
    n_params = sum(q.numel() for q in model.parameters())
    print(f"[fast] transformer_net width {a.width} ({n_params:,} parameters): {t_fast * 1e3:.1f} ms a forward")
    del res
    print(f"summary: {a.size}px, fast network / gatys optimisation = {t_opt / t_fast:.0f}x faster "
          f"({t_fast * 1e3:.1f} ms vs {t_opt:.1f} s for {a.steps} steps in {a.features})")


if __name__ == "__main__":
    main()
