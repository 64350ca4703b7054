"""Images for image-to-image models (``vislab translate``): paired, unpaired, or single images turned into pairs on
the fly, and the batch stream that crops, flips and degrades them by the shared global-batch rule.

* **Paired** (pix2pix): a folder with ``A/`` and ``B/`` holding images of the same names; or side-by-side ``AB``
  images (the pix2pix datasets' layout: ``facades/train/*.jpg``, A on the left); or the generated ``edges2shapes``.
  ``--direction BtoA`` swaps the two sides.
* **Unpaired** (CycleGAN): ``trainA/`` and ``trainB/`` (``testA/``, ``testB/`` for validation: the CycleGAN
  datasets' layout), ``A/`` and ``B/`` of unrelated names, ``--data A_DIR --data-b B_DIR``, or the generated ``warm2cool``.
* **Single images** (super-resolution, denoising, colorization): any folder of images, the bundled photos of
  scikit-image (``skimage``: seven colour photos, astronaut and chelsea held out; ``skimage_gray``), ``digits``,
  ``shapes``; the inputs are made from them on the fly (:mod:`vislab.data.translate.degrade`).

Images are decoded once and kept in memory as uint8 (``--max-memory-mb`` guards the size). With ``--load-size``
(paired / unpaired default: ``--img-size``) every image is resized to a square first; ``--load-size -1`` (the single-
image default) keeps each image's own size, and training takes random ``--img-size`` crops (``--patches`` per image and
epoch), evaluation the central ``--eval-size`` crop.

Example:
    >>> d = load_translate_data(TranslateDataConfig(data="edges2shapes", img_size=32, synth_count=20), "paired")
    >>> d.pairing, len(d.train_a), len(d.val_a), tuple(d.train_a.images[0].shape)
    ('paired', 18, 2, (3, 32, 32))
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from vislab.core.config import opt
from vislab.core.errors import DataError
from vislab.data.base import ImageDataConfig

PAIRINGS = ("paired", "unpaired", "single")
GENERATED = {"edges2shapes": "paired", "warm2cool": "unpaired"}
SKIMAGE_COLOUR = ("coffee", "rocket", "hubble_deep_field", "immunohistochemistry", "retina", "astronaut", "chelsea")
SKIMAGE_GRAY = ("brick", "grass", "gravel", "coins", "moon", "page", "text", "clock", "camera")
SKIMAGE_VAL = ("astronaut", "chelsea", "camera")  # held out of the bundled photos
MIN_IMAGES = 2


@dataclass
class TranslateDataConfig(ImageDataConfig):
    """Which images, paired how, at which crop size (``translate``'s ``data:``)."""

    data: str = opt("edges2shapes", "dataset: edges2shapes (paired), warm2cool (unpaired), skimage / skimage_gray (photos), digits, shapes, or a folder "
                                    "(A/ + B/, trainA/ + trainB/, side-by-side AB images, or plain images for sr / denoise / colorize)")
    data_b: str = opt("", "unpaired: the folder of domain B when --data is domain A's")
    direction: str = opt("AtoB", "paired / unpaired: translate A to B or B to A", choices=("AtoB", "BtoA"))
    img_size: int = opt(0, "training crop size (super-resolution: of the high-resolution target); 0: 256 for paired / unpaired folders, 64 else")
    load_size: int = opt(0, "resize every image to this square size before cropping (0: --img-size for paired / unpaired, "
                            "-1: keep each image's own size, the default for sr / denoise / colorize)")
    patches: int = opt(0, "random crops per image and epoch (0: 1 when images are resized, else as many as cover the image)")
    eval_size: int = opt(0, "validation: the central crop of this size (0: the largest that fits every validation image, at most 256)")
    augment: str = opt("auto", "random horizontal flips of the crops (auto: flip, none for digits)", choices=("auto", "none", "flip"))
    val_split: float = opt(0.1, "fraction held out for validation when the dataset has no validation images")
    channels: str = opt("auto", "auto: the images' own (gray if all are gray); 1 or 3: convert every image", choices=("auto", "1", "3"))
    max_memory_mb: int = opt(4096, "largest decoded dataset kept in memory; more is refused with a clear line")
    synth_count: int = opt(0, "images of the generated datasets (0: 400)")
    limit: int = opt(0, "use at most this many training images (0: all)")


@dataclass
class Images:
    """One domain's images in memory: uint8 ``(C, H, W)`` tensors (one size when resized, else each its own)."""

    name: str
    images: list[torch.Tensor]
    names: list[str]

    def __len__(self) -> int:
        return len(self.images)

    @property
    def channels(self) -> int:
        return int(self.images[0].shape[0])

    def min_side(self) -> int:
        return min(min(x.shape[-2:]) for x in self.images)

    def subset(self, idx: list[int]) -> Images:
        return Images(self.name, [self.images[i] for i in idx], [self.names[i] for i in idx])


@dataclass
class TranslateData:
    """Train and validation images of a translation task; ``*_b`` only for paired (aligned with ``*_a``) and unpaired data."""

    pairing: str
    train_a: Images
    val_a: Images | None = None
    train_b: Images | None = None
    val_b: Images | None = None
    name: str = ""
    resized: bool = True


# --------------------------------------------------------------------------------------------
# Reading
# --------------------------------------------------------------------------------------------
def _files(folder: Path) -> list[Path]:
    from vislab.data.classify.formats.imagefolder import list_images

    return list_images(folder)


def _read(path: Path, mode: str | None) -> np.ndarray:
    from PIL import Image

    from vislab.core.io import read_image
    from vislab.data.classify.formats._files import GRAY_MODES

    if mode is None:
        with Image.open(path) as im:
            mode = "L" if im.mode in GRAY_MODES else "RGB"
    return read_image(path, mode)


def _mode(paths: list[Path], channels: str) -> str:
    """``L`` when every image is gray (or ``--channels 1``), else ``RGB``."""
    if channels != "auto":
        return "L" if channels == "1" else "RGB"
    from PIL import Image

    from vislab.data.classify.formats._files import GRAY_MODES

    for p in paths:
        with Image.open(p) as im:
            if im.mode not in GRAY_MODES:
                return "RGB"
    return "L"


def _tensor(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.array(a, dtype=np.uint8, copy=True)).permute(2, 0, 1).contiguous()


def _resize(x: torch.Tensor, size: int) -> torch.Tensor:
    """uint8 ``(C, H, W)`` resized to ``size`` x ``size`` (bicubic, antialiased)."""
    import torch.nn.functional as F

    if tuple(x.shape[-2:]) == (size, size):
        return x
    y = F.interpolate(x[None].float(), size=(size, size), mode="bicubic", align_corners=False, antialias=True)[0]
    return y.round().clamp(0, 255).to(torch.uint8)


def _folder_images(folder: Path, channels: str, name: str = "") -> Images:
    files = _files(folder)
    if not files:
        raise DataError(f"--data: expected image files in '{folder}', got none")
    mode = _mode(files, channels)
    return Images(name or folder.name, [_tensor(_read(p, mode)) for p in files], [str(p.relative_to(folder)) for p in files])


def _stems(files: list[Path], root: Path) -> dict[str, Path]:
    return {str(p.relative_to(root).with_suffix("")): p for p in files}


def _paired_folders(a_dir: Path, b_dir: Path, channels: str) -> tuple[Images, Images]:
    """A/ and B/ with the same file names (extensions may differ); every pair of one size."""
    fa, fb = _stems(_files(a_dir), a_dir), _stems(_files(b_dir), b_dir)
    only_a, only_b = sorted(set(fa) - set(fb)), sorted(set(fb) - set(fa))
    if only_a or only_b:
        raise DataError(f"{a_dir.parent}: expected paired folders ({a_dir.name}/ and {b_dir.name}/ with the same file names), got "
                        f"{len(only_a)} name(s) only in {a_dir.name}/ (e.g. '{(only_a or ['-'])[0]}') and {len(only_b)} only in {b_dir.name}/ "
                        f"(e.g. '{(only_b or ['-'])[0]}'); unpaired data: --model cyclegan")
    if not fa:
        raise DataError(f"{a_dir}: expected paired images, got none")
    keys = sorted(fa)
    ma, mb = _mode([fa[k] for k in keys], channels), _mode([fb[k] for k in keys], channels)
    a, b = [], []
    for k in keys:
        xa, xb = _tensor(_read(fa[k], ma)), _tensor(_read(fb[k], mb))
        if xa.shape[-2:] != xb.shape[-2:]:
            raise DataError(f"pair '{k}': expected A and B images of one size, got {xa.shape[-2]}x{xa.shape[-1]} ({fa[k]}) and "
                            f"{xb.shape[-2]}x{xb.shape[-1]} ({fb[k]})")
        a.append(xa)
        b.append(xb)
    return Images(a_dir.name, a, keys), Images(b_dir.name, b, keys)


def _side_by_side(folder: Path, channels: str) -> tuple[Images, Images]:
    """pix2pix's layout: each file holds A (left half) and B (right half)."""
    files = _files(folder)
    if not files:
        raise DataError(f"--data: expected side-by-side AB images in '{folder}', got none")
    mode = _mode(files, channels)
    a, b, names = [], [], []
    for p in files:
        x = _tensor(_read(p, mode))
        w = x.shape[-1]
        if w % 2:
            raise DataError(f"image '{p}': expected a side-by-side AB image of even width (A left, B right), got width {w}")
        a.append(x[..., : w // 2].contiguous())
        b.append(x[..., w // 2:].contiguous())
        names.append(str(p.relative_to(folder)))
    return Images(folder.name + ":A", a, names), Images(folder.name + ":B", b, names)


def _skimage(gray: bool) -> tuple[Images, Images]:
    import skimage.data as sk

    names = SKIMAGE_GRAY if gray else SKIMAGE_COLOUR
    imgs = {}
    for n in names:
        a = getattr(sk, n)()
        imgs[n] = _tensor(a[:, :, None] if a.ndim == 2 else a[:, :, :3])
    tr = [n for n in names if n not in SKIMAGE_VAL]
    va = [n for n in names if n in SKIMAGE_VAL]
    label = "skimage_gray" if gray else "skimage"
    return Images(label, [imgs[n] for n in tr], tr), Images(label, [imgs[n] for n in va], va)


def _split(imgs: Images, val_split: float, seed: int) -> tuple[Images, Images | None]:
    n = len(imgs)
    k = int(math.ceil(n * val_split)) if val_split > 0 and n > 1 else 0
    if k == 0:
        return imgs, None
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    return imgs.subset(sorted(order[k:])), imgs.subset(sorted(order[:k]))


def _split_pair(a: Images, b: Images, val_split: float, seed: int) -> tuple[Images, Images, Images | None, Images | None]:
    ta, va = _split(a, val_split, seed)
    if va is None:
        return a, b, None, None
    keep = {nm: i for i, nm in enumerate(b.names)}
    return ta, b.subset([keep[n] for n in ta.names]), va, b.subset([keep[n] for n in va.names])


def _has(root: Path, *names: str) -> bool:
    return all((root / n).is_dir() for n in names)


def _unpaired_layout(root: Path) -> tuple[Path, Path, Path | None, Path | None] | None:
    if _has(root, "trainA", "trainB"):
        return root / "trainA", root / "trainB", (root / "testA" if _has(root, "testA") else None), (root / "testB" if _has(root, "testB") else None)
    return None


def _load(cfg: TranslateDataConfig, pairing: str) -> TranslateData:
    data, seed, n_syn = cfg.data, cfg.split_seed, cfg.synth_count or 400
    if data in GENERATED:
        if GENERATED[data] != pairing and not (pairing == "unpaired" and data == "edges2shapes") and pairing != "single":
            raise DataError(f"--data {data}: expected {pairing} data for this model, got {GENERATED[data]} images (paired: edges2shapes; unpaired: warm2cool)")
        from vislab.data.translate import synthetic

        size = cfg.img_size or 64
        xa, xb = getattr(synthetic, data)(n_syn, size, seed)
        names = [f"{i:05d}" for i in range(n_syn)]
        a = Images(f"{data}:A", [_tensor(v) for v in xa], names)
        b = Images(f"{data}:B", [_tensor(v) for v in xb], names)
        if pairing == "single":  # the B side's pictures as plain images
            ta, va = _split(b, cfg.val_split, seed)
            return TranslateData("single", ta, va, name=data)
        ta, tb, va, vb = _split_pair(a, b, cfg.val_split, seed)
        return TranslateData(pairing, ta, va, tb, vb, name=data)
    if data in ("skimage", "skimage_gray"):
        if pairing != "single":
            raise DataError(f"--data {data}: expected a paired or unpaired dataset for this model, got single photos (they suit sr, denoise, colorize)")
        tr, va = _skimage(data == "skimage_gray")
        return TranslateData("single", tr, va, name=data)
    if data in ("digits", "shapes"):
        if pairing != "single":
            raise DataError(f"--data {data}: expected a paired or unpaired dataset for this model, got single images (they suit sr, denoise, colorize)")
        from vislab.data.generate import GenDataConfig, load_gen_data

        s = load_gen_data(GenDataConfig(data=data, img_size=cfg.img_size if data == "shapes" and cfg.img_size else 0, val_split=cfg.val_split,
                                        split_seed=seed, synth_count=cfg.synth_count))
        def _imgs(src) -> Images:
            return Images(data, [src.get(i) for i in range(len(src))], [str(i) for i in range(len(src))])
        return TranslateData("single", _imgs(s.train), _imgs(s.val) if s.val is not None and len(s.val) else None, name=data)
    root = Path(data).expanduser()
    if not root.exists():
        raise DataError(f"--data: expected edges2shapes, warm2cool, skimage, digits, shapes or an existing folder, got '{data}' (not found)")
    if not root.is_dir():
        raise DataError(f"--data: expected a folder of images, got the file '{data}'")
    if pairing == "unpaired":
        if cfg.data_b:
            rb = Path(cfg.data_b).expanduser()
            if not rb.is_dir():
                raise DataError(f"--data-b: expected the folder of domain B, got '{cfg.data_b}' (not a folder)")
            ta, tb = _folder_images(root, cfg.channels, "A"), _folder_images(rb, cfg.channels, "B")
            ta, va = _split(ta, cfg.val_split, seed)
            tb, vb = _split(tb, cfg.val_split, seed)
            return TranslateData("unpaired", ta, va, tb, vb, name=f"{root.name}+{rb.name}")
        lay = _unpaired_layout(root) or ((root / "A", root / "B", None, None) if _has(root, "A", "B") else None)
        if lay is None:
            raise DataError(f"{root}: expected unpaired folders trainA/ + trainB/ (or A/ + B/, or --data-b), got {', '.join(p.name for p in sorted(root.iterdir())[:5]) or 'nothing'}")
        ta, tb = _folder_images(lay[0], cfg.channels, "A"), _folder_images(lay[1], cfg.channels, "B")
        va = _folder_images(lay[2], cfg.channels, "A") if lay[2] is not None else None
        vb = _folder_images(lay[3], cfg.channels, "B") if lay[3] is not None else None
        if va is None:
            ta, va = _split(ta, cfg.val_split, seed)
        if vb is None:
            tb, vb = _split(tb, cfg.val_split, seed)
        return TranslateData("unpaired", ta, va, tb, vb, name=root.name)
    if pairing == "paired":
        if cfg.data_b:
            raise DataError("--data-b: expected no second folder for paired data (A/ and B/ inside --data, or side-by-side images)")
        if _unpaired_layout(root) is not None:
            raise DataError(f"{root}: expected paired images (A/ and B/ with the same file names, or side-by-side AB images), got unpaired folders "
                            "trainA/ and trainB/; unpaired data: --model cyclegan")
        if _has(root, "A", "B"):
            a, b = _paired_folders(root / "A", root / "B", cfg.channels)
            ta, tb, va, vb = _split_pair(a, b, cfg.val_split, seed)
            return TranslateData("paired", ta, va, tb, vb, name=root.name)
        if (root / "train").is_dir():
            ta, tb = _side_by_side(root / "train", cfg.channels)
            val = next((root / s for s in ("val", "test") if (root / s).is_dir()), None)
            if val is not None:
                va, vb = _side_by_side(val, cfg.channels)
                return TranslateData("paired", ta, va, tb, vb, name=root.name)
            ta, tb, va, vb = _split_pair(ta, tb, cfg.val_split, seed)
            return TranslateData("paired", ta, va, tb, vb, name=root.name)
        a, b = _side_by_side(root, cfg.channels)
        ta, tb, va, vb = _split_pair(a, b, cfg.val_split, seed)
        return TranslateData("paired", ta, va, tb, vb, name=root.name)
    # single images: every image below the folder (train/ and val/ when laid out so)
    if (root / "train").is_dir():
        tr = _folder_images(root / "train", cfg.channels, root.name)
        val = next((root / s for s in ("val", "valid", "test") if (root / s).is_dir()), None)
        if val is not None:
            return TranslateData("single", tr, _folder_images(val, cfg.channels, root.name), name=root.name)
        tr, va = _split(tr, cfg.val_split, seed)
        return TranslateData("single", tr, va, name=root.name)
    tr, va = _split(_folder_images(root, cfg.channels, root.name), cfg.val_split, seed)
    return TranslateData("single", tr, va, name=root.name)


def _convert(imgs: Images | None, c: int) -> Images | None:
    if imgs is None or imgs.channels == c:
        return imgs
    out = []
    for x in imgs.images:
        if c == 3:
            out.append(x.expand(3, -1, -1).contiguous())
        else:
            f = x.float()
            out.append((0.299 * f[0] + 0.587 * f[1] + 0.114 * f[2]).round().clamp(0, 255).to(torch.uint8)[None])
    return Images(imgs.name, out, imgs.names)


def load_translate_data(cfg: TranslateDataConfig, pairing: str, want_channels: int = 0) -> TranslateData:
    """The images of a translation run (see the module docstring), resized when ``--load-size`` says so.

    ``want_channels``: the channel count the model needs (colorization: 3); 0 keeps the images' own.

    Raises:
        DataError: a missing path, a layout that does not fit the model (unpaired folders for a paired model,
            names that do not match, A/B pairs of different sizes), too few images, too much to keep in memory.
    """
    d = _load(cfg, pairing)
    if cfg.direction == "BtoA" and d.pairing != "single":
        d.train_a, d.train_b, d.val_a, d.val_b = d.train_b, d.train_a, d.val_b, d.val_a
    if cfg.limit and cfg.limit < len(d.train_a):
        d.train_a = d.train_a.subset(list(range(cfg.limit)))
        if d.pairing == "paired":
            d.train_b = d.train_b.subset(list(range(cfg.limit)))
    if len(d.train_a) < MIN_IMAGES:
        raise DataError(f"{d.name}: expected at least {MIN_IMAGES} training images, got {len(d.train_a)}")
    if want_channels:
        d.train_a, d.val_a = _convert(d.train_a, want_channels), _convert(d.val_a, want_channels)
    nbytes = sum(x.numel() for side in (d.train_a, d.val_a, d.train_b, d.val_b) if side is not None for x in side.images)
    if nbytes > cfg.max_memory_mb * 2**20:
        raise DataError(f"{d.name}: expected at most --max-memory-mb {cfg.max_memory_mb} MB of decoded images, got {nbytes / 2**20:.0f} MB; "
                        "pass a larger --max-memory-mb, --limit N, or smaller images (--load-size)")
    load = cfg.load_size if cfg.load_size else (-1 if d.pairing == "single" else (cfg.img_size or 256))
    if load > 0:
        for attr in ("train_a", "val_a", "train_b", "val_b"):
            side = getattr(d, attr)
            if side is not None:
                setattr(d, attr, Images(side.name, [_resize(x, load) for x in side.images], side.names))
    d.resized = load > 0
    return d
