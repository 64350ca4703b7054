"""Joint image / box / mask augmentation for detection batches.

Two paths, one result format (images ``(b, 3, H, W)`` float in [0, 1], target dicts with ``boxes`` xyxy pixels,
``labels`` and, when present, ``masks (n, H, W)`` uint8):

- **Batched, on the batch's device** (presets ``flip``, ``standard``, ``strong``): per image a horizontal flip,
  a zoom ``s`` about the centre and a shift ``t``, so a point moves to ``s * (x_f - c) + c + t`` (``x_f`` the
  flipped point). The images are warped by one ``grid_sample`` call for the whole batch (outside pixels take
  the dataset mean), masks by one nearest-neighbour call, boxes exactly by the same map, then clipped; a box
  keeps its object when at least ``min_visible`` of it is still inside and it is at least 2 px wide and high.
  Photometric jitter (brightness, contrast, saturation) is applied per image. About 0.2-0.4 ms per 64 px image
  with masks on one CPU thread, 5x torchvision v2 called per image (``bench/det_augment_speed.py``); the
  parameters equal ``torchvision.transforms.v2.functional.affine(angle=0, translate=t,
  scale=s)`` (tested).
- **Per image, torchvision v2** (preset ``ssd``): the SSD recipe -- ``RandomPhotometricDistort``,
  ``RandomZoomOut``, ``RandomIoUCrop``, ``RandomHorizontalFlip``, ``Resize``, ``SanitizeBoundingBoxes`` --
  seeded per image. Faithful to the paper and slow on a CPU (~20-35 ms per image, mostly ``RandomIoUCrop``).

Randomness comes from a generator the caller seeds with (seed, epoch, batch), drawn for the whole *global*
batch and then sliced per process, so runs are resumable and independent of the number of processes.

Example:
    >>> x = torch.rand(2, 3, 32, 32)
    >>> t = [{"boxes": torch.tensor([[4.0, 4, 12, 12]]), "labels": torch.tensor([1])},
    ...      {"boxes": torch.zeros(0, 4), "labels": torch.zeros(0, dtype=torch.long)}]
    >>> aug = JointAugment("strong", mean=[0.5, 0.5, 0.5])
    >>> p = aug.sample(2, torch.Generator().manual_seed(0))
    >>> y, u = aug(x, t, p)
    >>> y.shape, len(u), sorted(u[0])
    (torch.Size([2, 3, 32, 32]), 2, ['boxes', 'labels'])
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from vislab.core.errors import ConfigError

PRESETS = ("none", "flip", "standard", "strong", "ssd")

# preset -> (zoom range, shift as a fraction of the side, photometric strength)
_RANGES = {"flip": ((1.0, 1.0), 0.0, 0.0), "standard": ((0.75, 1.25), 0.1, 0.2), "strong": ((0.5, 1.5), 0.2, 0.4)}


@dataclass
class JointParams:
    """Per-image parameters of the batched path: ``flip (b,)`` bool, ``scale (b,)``, ``shift (b, 2)`` as a fraction
    of width/height, ``photo (b, 3)`` brightness/contrast/saturation factors; ``seeds (b,)`` for the per-image path."""

    flip: torch.Tensor
    scale: torch.Tensor
    shift: torch.Tensor
    photo: torch.Tensor
    seeds: torch.Tensor

    def __getitem__(self, sel) -> JointParams:
        return JointParams(self.flip[sel], self.scale[sel], self.shift[sel], self.photo[sel], self.seeds[sel])


class JointAugment:
    """Augment a detection batch with one of :data:`PRESETS` (see the module docstring).

    Args:
        preset: ``none``, ``flip``, ``standard``, ``strong`` or ``ssd``.
        mean: per-channel fill for pixels warped in from outside the image (the dataset mean, in [0, 1]).
        min_visible: a box whose visible fraction after the warp is below this is dropped with its mask.
    """

    def __init__(self, preset: str, mean: list[float] | tuple[float, ...] = (0.5, 0.5, 0.5), min_visible: float = 0.4):
        if preset not in PRESETS:
            raise ConfigError(f"--augment: expected one of {', '.join(PRESETS)}, got '{preset}'")
        self.preset, self.mean, self.min_visible = preset, list(mean), min_visible
        self._ssd = None

    def sample(self, n: int, gen: torch.Generator) -> JointParams:
        """Parameters for ``n`` images (draw them for the global batch, then slice this process's share)."""
        (lo, hi), shift, photo = _RANGES.get(self.preset, ((1.0, 1.0), 0.0, 0.0))
        flip = torch.rand(n, generator=gen) < 0.5 if self.preset != "none" else torch.zeros(n, dtype=torch.bool)
        # zoom drawn log-uniformly: zooming in by 1.5 and out by 1/1.5 equally likely
        scale = torch.exp(torch.empty(n).uniform_(torch.tensor(lo).log().item(), torch.tensor(hi).log().item(), generator=gen)) if hi > lo else torch.ones(n)
        sh = (torch.rand(n, 2, generator=gen) * 2 - 1) * shift
        ph = 1 + (torch.rand(n, 3, generator=gen) * 2 - 1) * photo
        seeds = torch.randint(0, 2**62, (n,), generator=gen)
        return JointParams(flip, scale, sh, ph, seeds)

    def __call__(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]], p: JointParams) -> tuple[torch.Tensor, list[dict[str, torch.Tensor]]]:
        """Augmented copies of images ``x (b, 3, H, W)`` in [0, 1] and their ``targets``."""
        if self.preset == "none" or len(targets) == 0:
            return x, targets
        if self.preset == "ssd":
            return self._per_image(x, targets, p)
        if self.preset == "flip":  # exact, no resampling
            return flip_batch(x, targets, p.flip)
        return self._warp(photometric(x, p.photo.to(x.device)), targets, p)

    # -- batched path ---------------------------------------------------------------------------------
    def _warp(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]], p: JointParams):
        b, _, h, w = x.shape
        dev = x.device
        fx = torch.where(p.flip, -1.0, 1.0).to(dev)
        s, t = p.scale.to(dev), p.shift.to(dev) * 2  # shift in normalised [-1, 1] units
        theta = torch.zeros(b, 2, 3, device=dev)  # output -> input, normalised coordinates
        theta[:, 0, 0], theta[:, 0, 2] = fx / s, -fx * t[:, 0] / s
        theta[:, 1, 1], theta[:, 1, 2] = 1 / s, -t[:, 1] / s
        grid = F.affine_grid(theta, [b, 1, h, w], align_corners=False)
        fill = torch.tensor(self.mean, device=dev, dtype=x.dtype).view(1, -1, 1, 1)
        out = F.grid_sample(x - fill, grid.to(x.dtype), mode="bilinear", padding_mode="zeros", align_corners=False) + fill
        ys = warp_all_boxes(targets, p, (h, w), self.min_visible)
        with_masks = [i for i, tg in enumerate(targets) if "masks" in tg]
        if with_masks:
            counts = [len(targets[i]["masks"]) for i in with_masks]
            m = torch.cat([targets[i]["masks"] for i in with_masks]).to(dev)[:, None].float()
            g = grid[with_masks].repeat_interleave(torch.tensor(counts, device=dev), 0)
            warped = F.grid_sample(m, g, mode="nearest", padding_mode="zeros", align_corners=False)[:, 0].to(torch.uint8)
            for i, part in zip(with_masks, warped.split(counts), strict=True):
                ys[i]["masks"] = part[ys[i]["_keep"].to(dev)]
        for y in ys:
            del y["_keep"]
        return out.clamp_(0, 1), ys

    # -- per-image torchvision v2 path ------------------------------------------------------------------
    def _per_image(self, x: torch.Tensor, targets: list[dict[str, torch.Tensor]], p: JointParams):
        from torchvision import tv_tensors as tvt
        from torchvision.transforms import v2

        h, w = x.shape[-2:]
        if self._ssd is None:
            self._ssd = v2.Compose([
                v2.RandomPhotometricDistort(p=0.5), v2.RandomZoomOut(fill={tvt.Image: self.mean, "others": 0}, side_range=(1.0, 2.0), p=0.5),
                v2.RandomIoUCrop(), v2.RandomHorizontalFlip(), v2.Resize((h, w), antialias=True), v2.SanitizeBoundingBoxes(min_size=2),
            ])
        imgs, ys = [], []
        for i, tg in enumerate(targets):
            sample = {"image": tvt.Image(x[i]), "boxes": tvt.BoundingBoxes(tg["boxes"], format="XYXY", canvas_size=(h, w)), "labels": tg["labels"]}
            if "masks" in tg:
                sample["masks"] = tvt.Mask(tg["masks"])
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(int(p.seeds[i]))
                out = self._ssd(sample)
            imgs.append(out["image"].as_subclass(torch.Tensor))
            y = {"boxes": out["boxes"].as_subclass(torch.Tensor).float(), "labels": out["labels"]}
            if "masks" in out:
                y["masks"] = out["masks"].as_subclass(torch.Tensor)
            ys.append(y)
        return torch.stack(imgs).clamp_(0, 1), ys


def flip_batch(x: torch.Tensor, targets: list[dict[str, torch.Tensor]], flip: torch.Tensor):
    """Mirror the images where ``flip`` is true, with their boxes and masks (exact: no resampling)."""
    f = flip.to(x.device)
    out = torch.where(f[:, None, None, None], x.flip(3), x)
    w = x.shape[-1]
    ys = []
    for i, tg in enumerate(targets):
        y = dict(tg)
        if bool(flip[i]):
            b = tg["boxes"]
            y["boxes"] = torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1)
            if "masks" in tg:
                y["masks"] = tg["masks"].flip(-1)
        ys.append(y)
    return out, ys


def warp_all_boxes(targets: list[dict[str, torch.Tensor]], p: JointParams, size: tuple[int, int], min_visible: float = 0.4) -> list[dict[str, torch.Tensor]]:
    """Boxes (and labels) of every image of a batch moved by its flip -> zoom ``scale`` about the centre -> ``shift``
    (all boxes concatenated, one pass), clipped to ``size (h, w)``; boxes less than ``min_visible`` inside, or under
    2 px wide or high, are dropped. The kept indices are under ``"_keep"`` (to select masks)."""
    counts = [len(t["boxes"]) for t in targets]
    boxes = torch.cat([t["boxes"].float() for t in targets])
    img = torch.repeat_interleave(torch.arange(len(targets)), torch.tensor(counts)).to(boxes.device)
    h, w = size
    dev = boxes.device
    moved = _move(boxes, p.flip.to(dev)[img], p.scale.to(dev)[img, None], (p.shift.to(dev)[img] * torch.tensor([w, h], device=dev)).repeat(1, 2), h, w)
    clipped, keep = _clip(moved, h, w, min_visible)
    out = []
    for t, c, k in zip(targets, clipped.split(counts), keep.split(counts), strict=True):
        out.append({"boxes": c[k], "labels": t["labels"][k.to(t["labels"].device)], "_keep": k})
    return out


def _move(b: torch.Tensor, flip: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor, h: int, w: int) -> torch.Tensor:
    b = torch.where(flip[:, None], torch.stack([w - b[:, 2], b[:, 1], w - b[:, 0], b[:, 3]], 1), b)
    c = torch.tensor([w / 2, h / 2, w / 2, h / 2], device=b.device)
    return (b - c) * scale + c + shift


def _clip(moved: torch.Tensor, h: int, w: int, min_visible: float) -> tuple[torch.Tensor, torch.Tensor]:
    hi = torch.tensor([w, h, w, h], dtype=moved.dtype, device=moved.device)
    clipped = torch.minimum(moved.clamp(min=0), hi)
    area = (moved[:, 2] - moved[:, 0]) * (moved[:, 3] - moved[:, 1])
    cw, ch = clipped[:, 2] - clipped[:, 0], clipped[:, 3] - clipped[:, 1]
    return clipped, (cw >= 2) & (ch >= 2) & (cw * ch >= min_visible * area.clamp(min=1e-6))


def photometric(x: torch.Tensor, factors: torch.Tensor) -> torch.Tensor:
    """Brightness, contrast and saturation of images ``x (b, 3, H, W)`` in [0, 1] scaled by ``factors (b, 3)``
    (1 = unchanged), the same formulas as torchvision's ``adjust_brightness/contrast/saturation``."""
    bri, con, sat = (factors[:, i].view(-1, 1, 1, 1).to(x.dtype) for i in range(3))
    x = (x * bri).clamp(0, 1)
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    x = ((x - gray.mean((2, 3), keepdim=True)) * con + gray.mean((2, 3), keepdim=True)).clamp(0, 1)
    gray = (0.299 * x[:, 0:1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])
    return ((x - gray) * sat + gray).clamp(0, 1)
