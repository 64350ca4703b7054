"""The batch stream of image-to-image tasks: crops, flips, unpaired partners and degradations by the global-batch rule.

Each training epoch visits every image ``patches`` times in a permutation seeded by ``(seed, epoch)``, cut into global
batches (the last partial one dropped); for each global batch one generator seeded by ``(seed, epoch, batch)`` draws
every crop position, flip, unpaired partner (a random image of domain B, as CycleGAN's unaligned loader picks it) and
degradation, and each process takes its strided share. So N processes, and a run resumed at an epoch boundary, see
exactly the pixels one uninterrupted process sees. Evaluation takes the central ``eval_size`` crop of every image, in
order, with the same degradations every epoch.

A batch holds ``a`` (the input, in ``[-1, 1]``; super-resolution: the small image) and ``b`` (the target; unpaired: an
unrelated image of domain B).

Example:
    >>> from vislab.data.translate import TranslateDataConfig, load_translate_data
    >>> d = load_translate_data(TranslateDataConfig(data="skimage", img_size=32), "single")
    >>> s = PairStream(d.train_a, None, make=Maker("sr", "bicubic", 2), crop=32, batch_size=4, train=True, patches=2)
    >>> b = next(iter(s.epoch(0)))
    >>> tuple(b.a.shape), tuple(b.b.shape), len(s)
    ((4, 3, 16, 16), (4, 3, 32, 32), 2)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch

from vislab.data.base import epoch_generator
from vislab.data.translate import Images
from vislab.data.translate import degrade as D

SALT = 200_003  # keeps this stream's generators apart from the epoch permutation's


@dataclass
class TBatch:
    """One process's share of a global batch: inputs ``a``, targets ``b`` (both in ``[-1, 1]``), their image indices."""

    a: torch.Tensor
    b: torch.Tensor
    n_global: int
    index: torch.Tensor
    k: int = 0  # the batch's number in its epoch

    def __len__(self) -> int:
        return len(self.a)


@dataclass(frozen=True)
class Maker:
    """How a pair comes from a clean crop: ``task`` none (paired / unpaired: the crops as they are), ``sr``
    (``kind`` bicubic | realesrgan, ``scale``), ``denoise`` (``kind`` gaussian | poisson | jpeg, ``level``) or
    ``colorize`` (input: L of L*a*b* scaled to ``[-1, 1]``; target: a*b* / 110)."""

    task: str = "none"
    kind: str = ""
    scale: int = 1
    level: float = 0.0

    def draw(self, n: int, shape: tuple[int, int, int], g: torch.Generator) -> dict[str, torch.Tensor]:
        return D.draw(self.task, self.kind, self.scale, self.level, n, shape, g) if self.task in ("sr", "denoise") else {}

    def __call__(self, clean: torch.Tensor, p: dict[str, torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``(input, target)`` in the model's scale from clean images in ``[0, 1]``."""
        if self.task in ("sr", "denoise"):
            return D.make_input(self.task, self.kind, self.scale, clean, p) * 2 - 1, clean * 2 - 1
        if self.task == "colorize":
            return lab_pair(clean)
        raise ValueError(f"Maker: expected task sr, denoise or colorize, got {self.task!r}")


def lab_pair(rgb01: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Colorization's ``(L / 50 - 1, ab / 110)`` from RGB in ``[0, 1]``."""
    from vislab.ops.color import rgb_to_lab

    lab = rgb_to_lab(rgb01.float())
    return lab[:, :1] / 50 - 1, lab[:, 1:] / 110


def lab_to_image(l_in: torch.Tensor, ab: torch.Tensor) -> torch.Tensor:
    """RGB in ``[-1, 1]`` from colorization's scaled L (``[-1, 1]``) and ab (``/ 110``)."""
    from vislab.ops.color import lab_to_rgb

    lab = torch.cat([(l_in.float() + 1) * 50, ab.float() * 110], 1)
    return lab_to_rgb(lab) * 2 - 1


def _crop(x: torch.Tensor, top: int, left: int, size: int, flip: bool) -> torch.Tensor:
    c = x[:, top:top + size, left:left + size]
    return c.flip(-1) if flip else c


def central(x: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size`` x ``size`` crop of ``(C, H, W)``."""
    h, w = x.shape[-2:]
    t, l = (h - size) // 2, (w - size) // 2
    return x[:, t:t + size, l:l + size]


def fit_crop(x: torch.Tensor, size: int) -> torch.Tensor:
    """``x`` upscaled (bicubic) so that its shorter side is at least ``size``: a small photo still gives a full crop."""
    import torch.nn.functional as F

    h, w = x.shape[-2:]
    if min(h, w) >= size:
        return x
    f = size / min(h, w)
    y = F.interpolate(x[None].float(), size=(max(size, round(h * f)), max(size, round(w * f))), mode="bicubic", align_corners=False)[0]
    return y.round().clamp(0, 255).to(torch.uint8)


class PairStream:
    """Batches of ``(a, b)`` pairs (see the module docstring).

    Args:
        a: images of domain A (paired, unpaired) or the clean images (``make``: sr, denoise, colorize).
        b: paired: the targets aligned with ``a``; unpaired: domain B; None for made pairs (and for plain images:
            without ``make`` as well, each image is its own target).
        make: a :class:`Maker` for made pairs, None otherwise.
        crop: training crop size (super-resolution: of the target); evaluation uses ``eval_size``.
        batch_size: the global batch; ``train``: shuffle, random crops and flips, drop the last partial batch.
        unpaired: draw B partners at random instead of taking ``b[i]``.
        patches: crops per image and epoch.
    """

    def __init__(self, a: Images, b: Images | None, *, make: Maker | None = None, crop: int, batch_size: int, train: bool, unpaired: bool = False,
                 patches: int = 1, eval_size: int = 0, flip: bool = True, seed: int = 0, rank: int = 0, world: int = 1,
                 device: torch.device | str = "cpu", channels_last: bool = False):
        self.a, self.b, self.make, self.train, self.unpaired = a, b, make, train, unpaired
        self.crop = crop if train else (eval_size or crop)
        self.patches = patches if train else 1
        self.flip, self.seed, self.rank, self.world = flip and train, seed, rank, world
        self.device, self.channels_last = torch.device(device), channels_last
        n = len(a) * self.patches
        self.batch_size = max(world, min(batch_size, n)) if train else batch_size
        self._a = [fit_crop(x, self.crop) for x in a.images]
        self._b = [fit_crop(x, self.crop) for x in b.images] if b is not None else None

    def __len__(self) -> int:
        n = len(self.a) * self.patches
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def _order(self, epoch: int) -> list[torch.Tensor]:
        n = len(self.a)
        idx = torch.arange(n).repeat(self.patches)
        if self.train:
            idx = idx[torch.randperm(len(idx), generator=epoch_generator(self.seed, epoch))]
        chunks = list(idx.split(self.batch_size))
        if self.train and chunks and len(chunks[-1]) < self.batch_size:
            chunks.pop()
        return chunks

    def _take(self, imgs: list[torch.Tensor], idx: list[int], u: torch.Tensor, flips: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for j, i in enumerate(idx):
            x = imgs[i]
            if self.train:
                h, w = x.shape[-2:]
                top, left = int(u[j, 0] * (h - self.crop + 1)), int(u[j, 1] * (w - self.crop + 1))
                out.append(_crop(x, min(top, h - self.crop), min(left, w - self.crop), self.crop, bool(flips[j])))
            else:
                out.append(central(x, self.crop))
        return out

    def epoch(self, epoch: int) -> Iterator[TBatch]:
        for k, idx in enumerate(self._order(epoch)):
            n = len(idx)
            g = epoch_generator(self.seed, epoch if self.train else 0, salt=SALT + k)
            u, flips = torch.rand((n, 2), generator=g), torch.rand(n, generator=g) < 0.5
            if not self.flip:
                flips = torch.zeros(n, dtype=torch.bool)
            if self.unpaired:
                nb = len(self._b)
                partner = torch.randint(0, nb, (n,), generator=g) if self.train else torch.arange(k * self.batch_size, k * self.batch_size + n) % nb
                ub, fb = torch.rand((n, 2), generator=g), torch.rand(n, generator=g) < 0.5
                if not self.flip:
                    fb = torch.zeros(n, dtype=torch.bool)
            c = self._a[int(idx[0])].shape[0]
            params = self.make.draw(n, (c, self.crop, self.crop), g) if self.make is not None else {}
            mine = torch.arange(n)[self.rank::self.world]
            loc = [int(idx[j]) for j in mine]
            a = self._take(self._a, loc, u[mine], flips[mine])
            if self.unpaired:
                b = self._take(self._b, partner[mine].tolist(), ub[mine], fb[mine])
            elif self._b is not None:
                b = self._take(self._b, loc, u[mine], flips[mine])
            else:
                b = None
            yield self._batch(a, b, {k2: v[mine] for k2, v in params.items()}, n, idx[mine], k)

    def _batch(self, a: list[torch.Tensor], b: list[torch.Tensor] | None, params: dict[str, torch.Tensor], n: int, index: torch.Tensor, k: int = 0) -> TBatch:
        if not a:  # this process has no share of a last, small evaluation batch
            c = self._a[0].shape[0]
            e = torch.zeros((0, c, self.crop, self.crop), device=self.device)
            return TBatch(e, e, n, index, k)
        xa = torch.stack(a).to(self.device).float() / 255
        if self.make is not None:
            inp, tgt = self.make(xa, params)
        elif b is None:  # plain images (style transfer's content): the input is its own target
            inp = tgt = xa * 2 - 1
        else:
            inp, tgt = xa * 2 - 1, torch.stack(b).to(self.device).float() / 127.5 - 1
        if self.channels_last:
            inp, tgt = inp.contiguous(memory_format=torch.channels_last), tgt.contiguous(memory_format=torch.channels_last)
        return TBatch(inp, tgt, n, index, k)
