"""How close generated 2-D points are to real ones: MMD, sliced Wasserstein distance, and -- for mixtures of
Gaussians with known centres -- the modes covered and the share of high-quality samples (the measures of the
Unrolled-GAN and VEEGAN papers: a sample is high quality within 3 standard deviations of a centre; a mode counts
as covered when at least 1% of the samples, and at least one, fall there).

The state is the points themselves: :meth:`PointSetMetrics.sync` gathers them from every process, so the numbers
do not depend on how many processes evaluated.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> real = torch.randn(500, 2, generator=g)
    >>> m = PointSetMetrics(); m.update(real + 0.01, real); r = m.compute()
    >>> r["mmd"] < 1e-3, r["swd"] < 0.05
    (True, True)
    >>> m = PointSetMetrics(); m.update(real + 3.0, real); m.compute()["mmd"] > 0.5
    True
"""

from __future__ import annotations

import torch

from vislab.core.dist import all_gather_list


def mmd_rbf(x: torch.Tensor, y: torch.Tensor, scales: tuple[float, ...] = (0.1, 0.5, 1.0, 2.0)) -> float:
    """Squared maximum mean discrepancy between point sets ``(N, d)`` and ``(M, d)`` with a sum of RBF kernels
    (bandwidths ``scales``); the unbiased estimate (it can be slightly negative for equal distributions)."""
    x, y = x.double(), y.double()
    def k(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        d2 = torch.cdist(a, b).pow(2)
        return sum(torch.exp(-d2 / (2 * s * s)) for s in scales)

    n, m = len(x), len(y)
    kxx, kyy, kxy = k(x, x), k(y, y), k(x, y)
    return float((kxx.sum() - kxx.diagonal().sum()) / (n * (n - 1)) + (kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1)) - 2 * kxy.mean())


def sliced_wasserstein(x: torch.Tensor, y: torch.Tensor, projections: int = 128, seed: int = 0) -> float:
    """Mean 1-Wasserstein distance of the 1-D projections of ``x`` and ``y`` on random directions (quantiles compared)."""
    g = torch.Generator().manual_seed(seed)
    dirs = torch.randn(x.shape[1], projections, generator=g, dtype=torch.float64)
    dirs /= dirs.norm(dim=0, keepdim=True)
    q = torch.linspace(0, 1, 101, dtype=torch.float64)
    px, py = torch.quantile(x.double() @ dirs, q, dim=0), torch.quantile(y.double() @ dirs, q, dim=0)
    return float((px - py).abs().mean())


class PointSetMetrics:
    """Generated vs real points, gathered over processes; ``centres`` / ``std``: the mixture's modes, when known."""

    def __init__(self, centres: torch.Tensor | None = None, std: float = 0.05):
        self.centres, self.std = centres, std
        self.fake: list[torch.Tensor] = []
        self.real: list[torch.Tensor] = []

    def update(self, fake: torch.Tensor, real: torch.Tensor) -> None:
        self.fake.append(fake.detach().float().cpu())
        self.real.append(real.detach().float().cpu())

    def sync(self) -> None:
        self.fake, self.real = all_gather_list(self.fake), all_gather_list(self.real)

    def compute(self) -> dict[str, float]:
        fake, real = torch.cat(self.fake), torch.cat(self.real)
        out = {"mmd": mmd_rbf(fake, real), "swd": sliced_wasserstein(fake, real)}
        if self.centres is not None:
            d = torch.cdist(fake.double(), self.centres.double())  # (N, M)
            near, which = d.min(1)
            good = near <= 3 * self.std
            counts = torch.bincount(which[good], minlength=len(self.centres))
            out["modes"] = float((counts >= max(1, round(0.01 * len(fake)))).sum())
            out["high_quality"] = float(good.double().mean())
        return out
