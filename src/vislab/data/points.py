"""2-D point sets for the toy GAN (:mod:`vislab.tasks.gan2d`): the classic teaching distributions, a CSV reader,
and a batch stream by the global-batch rule that also hands out the generator's noise.

Distributions (``--data``): ``ring`` (8 Gaussians on a circle of radius 2), ``grid`` (25 Gaussians on a 5 x 5
grid, spacing 2), ``moons`` (two interleaved half circles), ``spiral``, or a CSV file with two numeric columns
``x,y`` (a header line is allowed). The mixtures know their mode centres, so mode coverage can be measured.

Noise: every global batch gets ``z`` of shape ``(n_global, 2, z_dim)`` (and ``u``, ``(n_global,)`` uniform) from the
``(seed, epoch, batch)`` generator, sliced per process like augmentation parameters -- ``z[:, 0]`` for the critic's
update, ``z[:, 1]`` for the generator's -- so N processes draw exactly the noise one process draws.

Example:
    >>> pts, centres = make_points("ring", 400, noise=0.05, seed=0)
    >>> pts.shape, centres.shape
    (torch.Size([400, 2]), torch.Size([8, 2]))
    >>> s = PointStream(pts, 64, train=True, z_dim=3, seed=0)
    >>> b = next(iter(s.epoch(0)))
    >>> b.x.shape, b.z.shape, len(b), b.n_global
    (torch.Size([64, 2]), torch.Size([64, 2, 3]), 64, 64)
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError, did_you_mean
from vislab.data.base import epoch_generator, global_batches, train_batch_size

DISTRIBUTIONS = ("ring", "grid", "moons", "spiral")


@dataclass
class PointsDataConfig:
    """Which 2-D distribution, how many points, how they are batched."""

    data: str = opt("ring", "ring (8 Gaussians), grid (25 Gaussians), moons, spiral, or a CSV file of x,y points")
    synth_count: int = opt(4000, "points to generate (training; validation gets a fifth of it)")
    noise: float = opt(0.05, "standard deviation of each mode (ring, grid) or of the jitter (moons, spiral)")
    val_split: float = opt(0.2, "fraction held out for validation (CSV data)")
    split_seed: int = opt(0, "seed of the generated points and of the split")
    batch_size: int = opt(128, "global batch size (split across processes)")
    eval_batch_size: int = opt(0, "batch size for evaluation (0: 2 x batch-size)")

    def eval_batch(self) -> int:
        return self.eval_batch_size or 2 * self.batch_size


def make_points(kind: str, n: int, noise: float = 0.05, seed: int | tuple[int, ...] = 0) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``n`` points ``(n, 2)`` float32 of a named distribution and its mode centres ``(M, 2)`` (None: no modes).

    Raises:
        DataError: an unknown name (with a suggestion).
    """
    rng = np.random.default_rng(seed)
    if kind in ("ring", "grid"):
        if kind == "ring":
            a = np.arange(8) * 2 * math.pi / 8
            centres = 2.0 * np.stack([np.cos(a), np.sin(a)], 1)
        else:
            g = np.arange(-2, 3) * 2.0
            centres = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
        pts = centres[rng.integers(0, len(centres), n)] + noise * rng.standard_normal((n, 2))
        return torch.from_numpy(pts.astype(np.float32)), torch.from_numpy(centres.astype(np.float32))
    if kind == "moons":
        t = rng.uniform(0, math.pi, n)
        upper = rng.random(n) < 0.5
        x = np.where(upper, np.cos(t), 1 - np.cos(t))
        y = np.where(upper, np.sin(t), 0.5 - np.sin(t))
        pts = np.stack([x - 0.5, y - 0.25], 1) * 2 + noise * rng.standard_normal((n, 2))
        return torch.from_numpy(pts.astype(np.float32)), None
    if kind == "spiral":
        t = np.sqrt(rng.random(n)) * 3 * math.pi
        pts = np.stack([t * np.cos(t), t * np.sin(t)], 1) / (1.5 * math.pi) + noise * rng.standard_normal((n, 2))
        return torch.from_numpy(pts.astype(np.float32)), None
    raise DataError(f"--data: expected one of {', '.join(DISTRIBUTIONS)} or a CSV file, got '{kind}'{did_you_mean(kind, DISTRIBUTIONS)}")


def read_points_csv(path: str | Path) -> torch.Tensor:
    """``(N, 2)`` float32 from a CSV of two numeric columns (an optional header line).

    Raises:
        DataError: a missing file, a row without two numbers (named by line), fewer than 2 points, non-finite values.
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"--data: expected a distribution name ({', '.join(DISTRIBUTIONS)}) or a CSV file, got '{path}' (not found)"
                        f"{did_you_mean(str(path), DISTRIBUTIONS)}")
    rows = []
    for i, line in enumerate(p.read_text().splitlines(), 1):
        cells = [c.strip() for c in line.replace(";", ",").split(",") if c.strip()]
        if not cells:
            continue
        try:
            x, y = float(cells[0]), float(cells[1])
        except (ValueError, IndexError):
            if i == 1 and not rows:
                continue  # a header
            raise DataError(f"points file '{p}' line {i}: expected two numbers x,y, got {line.strip()[:60]!r}") from None
        rows.append((x, y))
    pts = torch.tensor(rows, dtype=torch.float32).reshape(-1, 2)
    if len(pts) < 2:
        raise DataError(f"points file '{p}': expected at least 2 points, got {len(pts)}")
    if not bool(torch.isfinite(pts).all()):
        raise DataError(f"points file '{p}': expected finite numbers, got inf or nan")
    return pts


def load_points(cfg: PointsDataConfig) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """``(train, val, centres)``: generated sets are drawn independently (seeds ``(split_seed, 1)`` and ``(split_seed, 2)``);
    a CSV is split by ``val_split``."""
    if cfg.data in DISTRIBUTIONS:
        if cfg.synth_count < 2:
            raise DataError(f"--synth-count: expected >= 2 points, got {cfg.synth_count}")
        tr, centres = make_points(cfg.data, cfg.synth_count, cfg.noise, (cfg.split_seed, 1))
        va, _ = make_points(cfg.data, max(2, cfg.synth_count // 5), cfg.noise, (cfg.split_seed, 2))
        return tr, va, centres
    pts = read_points_csv(cfg.data)
    perm = torch.randperm(len(pts), generator=torch.Generator().manual_seed(cfg.split_seed))
    n_val = max(1, round(cfg.val_split * len(pts)))
    if len(pts) - n_val < 1:
        raise DataError(f"points file '{cfg.data}': expected enough points to hold out {n_val} for validation, got {len(pts)}")
    return pts[perm[n_val:]], pts[perm[:n_val]], None


@dataclass
class PointBatch:
    """One process's share of a global batch: points and the generator's noise for them."""

    x: torch.Tensor  # (b, 2)
    z: torch.Tensor  # (b, 2, z_dim): [:, 0] for the critic's update, [:, 1] for the generator's
    u: torch.Tensor  # (b,) uniform in [0, 1): e.g. where a gradient penalty interpolates between real and fake
    n_global: int

    def __len__(self) -> int:
        return len(self.x)


class PointStream:
    """Batches of a point set by the global-batch rule, with noise drawn per global batch (see the module docstring).

    Evaluation batches (``train=False``) get the same noise every epoch, so validation numbers compare across epochs.
    """

    def __init__(self, points: torch.Tensor, batch_size: int, *, train: bool, z_dim: int, seed: int = 0, rank: int = 0,
                 world: int = 1, device: torch.device | str = "cpu"):
        self.points, self.train, self.z_dim, self.seed = points.to(device), train, z_dim, seed
        self.rank, self.world, self.device = rank, world, device
        self.batch_size = train_batch_size(batch_size, len(points), world) if train else batch_size

    def __len__(self) -> int:
        n = len(self.points)
        return n // self.batch_size if self.train else math.ceil(n / self.batch_size)

    def epoch(self, epoch: int) -> Iterator[PointBatch]:
        sel = slice(self.rank, None, self.world)
        for k, gb in enumerate(global_batches(len(self.points), self.batch_size, self.train, self.seed, epoch)):
            g = epoch_generator(self.seed, epoch if self.train else 0, salt=k + 1 if self.train else 10_000 + k)
            z = torch.randn(len(gb), 2, self.z_dim, generator=g)[sel]
            u = torch.rand(len(gb), generator=g)[sel]
            local = gb[sel]
            yield PointBatch(self.points[local.to(self.points.device)], z.to(self.device), u.to(self.device), len(gb))
