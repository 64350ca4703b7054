"""Batch augmentation beyond flip/translate, mixup / cutmix, and test-time augmentation.

``--augment`` takes a preset or a comma list of operations; :func:`parse_augment` resolves it:

=========  ====================================================================
preset     operations
=========  ====================================================================
none       --
light      translate
standard   flip, translate
strong     flip, crop, jitter, randaugment, erasing
=========  ====================================================================

Operations: ``flip`` (horizontal), ``translate`` (pad-and-crop, 2 px at 32 px), ``crop`` (random resized
crop, scale 0.35-1, aspect 3/4-4/3), ``rotate`` (+-15 degrees), ``jitter`` (brightness, contrast,
saturation +-40 %), ``randaugment`` / ``trivialaugment`` (torchvision's, on uint8, per sample),
``erasing`` (a random rectangle per sample with probability 0.5), ``mixup`` and ``cutmix`` (label mixing,
alphas ``--mixup-alpha`` / ``--cutmix-alpha``; with both, one of the two per batch).

Every geometric and photometric operation runs on the whole ``(B, C, H, W)`` batch on the training
device (one ``grid_sample`` for crop + rotate); only RandAugment / TrivialAugment loop over samples.
Parameters are drawn for the *global* batch from the ``(seed, epoch, batch)`` generator and sliced per
process, like :class:`~vislab.data.base.BatchAugment`. Mixup / cutmix pair each sample with the
process's batch reversed (as timm does).

Example:
    >>> import torch
    >>> aug = BatchPipeline(parse_augment("strong"), (17, 11), channels=3)
    >>> x = torch.randint(0, 256, (4, 3, 17, 11), dtype=torch.uint8)
    >>> g = torch.Generator().manual_seed(0)
    >>> y, y2, lam = aug(x, torch.arange(4), g, 4, slice(0, None, 1))
    >>> y.shape, y.dtype, y2 is None
    (torch.Size([4, 3, 17, 11]), torch.float32, True)
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError, did_you_mean

OPS = ("flip", "translate", "crop", "rotate", "jitter", "randaugment", "trivialaugment", "erasing", "mixup", "cutmix")
PRESETS = {"none": (), "light": ("translate",), "standard": ("flip", "translate"),
           "strong": ("flip", "crop", "jitter", "randaugment", "erasing")}
LEGACY = ("none", "light", "standard")  # handled bit-for-bit by vislab.data.base.BatchAugment
TTA_MODES = ("none", "flip", "flip-crop")


def parse_augment(spec: str) -> tuple[str, ...]:
    """A preset name or a comma list of operations (and presets) -> the operations, in pipeline order.

    Raises:
        ConfigError: an unknown preset or operation (with a suggestion).
    """
    spec = spec.strip()
    if spec in PRESETS:
        return PRESETS[spec]
    ops = [x for o in spec.split(",") if o.strip() for x in PRESETS.get(o.strip(), (o.strip(),))]  # presets may be extended: strong,mixup
    for o in ops:
        if o not in OPS:
            raise ConfigError(f"--augment: expected a preset ({', '.join(PRESETS)}) or a comma list of {', '.join(OPS)}, got '{o}'{did_you_mean(o, list(OPS) + list(PRESETS))}")
    return tuple(o for o in OPS if o in ops)


def _affine_grid(n: int, size: tuple[int, int], g: torch.Generator, crop: bool, rotate: bool) -> torch.Tensor:
    """``(n, 2, 3)`` affine matrices (normalised coordinates) for random resized crop and rotation."""
    theta = torch.zeros(n, 2, 3)
    scale = torch.empty(n).uniform_(0.35, 1.0, generator=g) if crop else torch.ones(n)
    logr = torch.empty(n).uniform_(math.log(3 / 4), math.log(4 / 3), generator=g) if crop else torch.zeros(n)
    sx = (scale * torch.exp(logr)).sqrt().clamp(max=1.0)
    sy = (scale / torch.exp(logr)).sqrt().clamp(max=1.0)
    cx = (torch.rand(n, generator=g) * 2 - 1) * (1 - sx) if crop else torch.zeros(n)
    cy = (torch.rand(n, generator=g) * 2 - 1) * (1 - sy) if crop else torch.zeros(n)
    ang = (torch.rand(n, generator=g) * 2 - 1) * math.radians(15) if rotate else torch.zeros(n)
    cos, sin = torch.cos(ang), torch.sin(ang)
    theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = sx * cos, -sx * sin, cx
    theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = sy * sin, sy * cos, cy
    return theta


class BatchPipeline:
    """Applies parsed operations to a uint8 batch; returns float 0..1 images and mixed labels.

    Args:
        ops: from :func:`parse_augment`.
        size: ``(H, W)`` of the images.
        channels: 1 or 3 (jitter's saturation and RandAugment's colour ops need 3).
        mixup_alpha, cutmix_alpha: Beta parameters of the mixing weight.
    """

    def __init__(self, ops: tuple[str, ...], size: tuple[int, int], channels: int = 3, mixup_alpha: float = 0.2, cutmix_alpha: float = 1.0):
        self.ops = set(ops)
        self.size = size
        self.channels = channels
        self.pad = max(1, round(2 * min(size) / 32))
        self.mixup_alpha, self.cutmix_alpha = mixup_alpha, cutmix_alpha
        self._policy: nn.Module | None = None
        if "randaugment" in self.ops or "trivialaugment" in self.ops:
            from torchvision.transforms import v2

            self._policy = v2.RandAugment(num_ops=2, magnitude=9) if "randaugment" in self.ops else v2.TrivialAugmentWide()

    @property
    def mixes(self) -> bool:
        return bool(self.ops & {"mixup", "cutmix"})

    def __call__(self, x: torch.Tensor, y: torch.Tensor, g: torch.Generator, n_global: int, sel: slice):
        """Augment one process's share ``x`` (``(b, C, H, W)`` uint8) of a global batch of ``n_global``.

        Returns:
            ``(x, y2, lam)``: ``(b, C, H, W)`` float in 0..1; partner labels ``(b,)`` and mixing weight
            of the own label (a 0-d tensor) for mixup / cutmix, else ``None, None``.
        """
        dev = x.device
        n, o = n_global, self.ops

        def draw(t: torch.Tensor) -> torch.Tensor:  # global parameters -> this process's share, on device
            return t[sel].to(dev)

        # parameters, in a fixed order, for the whole global batch
        flips = torch.rand(n, generator=g) < 0.5 if "flip" in o else None
        shifts = torch.randint(0, 2 * self.pad + 1, (2, n), generator=g) if "translate" in o else None
        theta = _affine_grid(n, self.size, g, "crop" in o, "rotate" in o) if o & {"crop", "rotate"} else None
        jit = torch.empty(3, n).uniform_(0.6, 1.4, generator=g) if "jitter" in o else None
        seeds = torch.randint(0, 2**31 - 1, (n,), generator=g) if self._policy is not None else None
        erase = torch.rand(5, n, generator=g) if "erasing" in o else None
        mix = torch.rand(2, generator=g) if self.mixes else None

        if self._policy is not None:  # uint8, per sample, seeded per sample
            out = torch.empty_like(x)
            for i, s in enumerate(draw(seeds).tolist()):
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(int(s))
                    xi = x[i] if self.channels == 3 else x[i].expand(3, -1, -1)
                    r = self._policy(xi)
                    out[i] = r if self.channels == 3 else r[:1]
            x = out
        x = x.float().div_(255.0)
        b, c, h, w = x.shape
        if flips is not None:
            x = torch.where(draw(flips)[:, None, None, None], x.flip(3), x)
        if shifts is not None:
            p = self.pad
            xp = F.pad(x, (p, p, p, p), mode="reflect")
            rows = torch.arange(h, device=dev)[None, :] + draw(shifts[0])[:, None]
            cols = torch.arange(w, device=dev)[None, :] + draw(shifts[1])[:, None]
            bi = torch.arange(b, device=dev)[:, None, None]
            x = xp.permute(0, 2, 3, 1)[bi, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2)
        if theta is not None:
            grid = F.affine_grid(draw(theta), [b, c, h, w], align_corners=False)
            x = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)
        if jit is not None:
            bri, con, sat = (draw(j)[:, None, None, None] for j in jit)
            x = x * bri
            m = x.mean(dim=(1, 2, 3), keepdim=True)
            x = (x - m) * con + m
            if c == 3:
                gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
                x = (x - gray) * sat + gray
            x = x.clamp_(0, 1)
        if erase is not None:
            on, area, ratio, cy, cx = (draw(e) for e in erase)
            area = 0.02 + area * 0.23  # 2 %..25 % of the image
            ratio = torch.exp((ratio * 2 - 1) * math.log(3))
            eh = (area * h * w * ratio).sqrt().clamp(max=h)
            ew = (area * h * w / ratio).sqrt().clamp(max=w)
            y0, x0 = cy * (h - eh), cx * (w - ew)
            rr = torch.arange(h, device=dev)[None, :, None]
            cc = torch.arange(w, device=dev)[None, None, :]
            box = (rr >= y0[:, None, None]) & (rr < (y0 + eh)[:, None, None]) & (cc >= x0[:, None, None]) & (cc < (x0 + ew)[:, None, None])
            box &= (on < 0.5)[:, None, None]
            x = torch.where(box[:, None], x.mean(dim=(2, 3), keepdim=True), x)  # filled with each image's mean colour
        if mix is None or b < 2:
            return x, None, None
        use_cutmix = "cutmix" in o and ("mixup" not in o or float(mix[0]) < 0.5)
        alpha = self.cutmix_alpha if use_cutmix else self.mixup_alpha
        lam = _beta(alpha, float(mix[1]))
        partner = x.flip(0)
        y2 = y.flip(0)
        if use_cutmix:
            ch, cw = round(h * math.sqrt(1 - lam)), round(w * math.sqrt(1 - lam))
            g2 = torch.Generator().manual_seed(int(mix[0].item() * 2**31))
            top = int(torch.randint(0, h - ch + 1, (1,), generator=g2)) if ch < h else 0
            left = int(torch.randint(0, w - cw + 1, (1,), generator=g2)) if cw < w else 0
            x = x.clone()
            x[:, :, top:top + ch, left:left + cw] = partner[:, :, top:top + ch, left:left + cw]
            lam = 1 - ch * cw / (h * w)
        else:
            x = lam * x + (1 - lam) * partner
        return x, y2, torch.tensor(lam, device=dev)


def _beta(alpha: float, u: float) -> float:
    """A Beta(alpha, alpha) draw, seeded by the uniform ``u`` taken from the batch generator."""
    import numpy as np

    return float(np.random.default_rng(int(u * 2**62)).beta(alpha, alpha))


# --------------------------------------------------------------------------------------------
# test-time augmentation
# --------------------------------------------------------------------------------------------
class TTA(nn.Module):
    """Averages the softmax of ``model`` over views; returns the *log* of the averaged probabilities.

    ``softmax`` of the output is the averaged probability, ``argmax`` the TTA prediction, and the
    output shape ``(B, K)`` is the model's -- callers need not change.

    Args:
        model: ``(B, C, H, W) -> (B, K)`` logits.
        mode: ``flip`` (image and its mirror) or ``flip-crop`` (those plus four corner crops of 7/8 the
            size, resized back, and their mirrors).
    """

    def __init__(self, model: nn.Module, mode: str = "flip"):
        super().__init__()
        if mode not in TTA_MODES[1:]:
            raise ConfigError(f"--tta: expected one of {', '.join(TTA_MODES)}, got {mode!r}")
        self.model, self.mode = model, mode

    def views(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = [x, x.flip(3)]
        if self.mode == "flip-crop":
            h, w = x.shape[-2:]
            ch, cw = max(1, round(h * 7 / 8)), max(1, round(w * 7 / 8))
            for top, left in ((0, 0), (0, w - cw), (h - ch, 0), (h - ch, w - cw)):
                v = F.interpolate(x[:, :, top:top + ch, left:left + cw], size=(h, w), mode="bilinear", align_corners=False)
                out += [v, v.flip(3)]
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, K) log-probabilities
        p = torch.stack([self.model(v).float().softmax(1) for v in self.views(x)]).mean(0)
        return p.clamp_min(1e-12).log()


def with_tta(model: nn.Module, mode: str) -> nn.Module:
    """``model`` wrapped in :class:`TTA`, or ``model`` itself for ``mode == "none"``."""
    return model if mode == "none" else TTA(model, mode)
