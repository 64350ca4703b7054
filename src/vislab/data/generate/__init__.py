"""Images to learn a distribution from (``vislab generate``): any classification source, a plain folder of images,
the LFW layout, with the checks a generative model needs, and a batch stream that also hands out the noise.

* **Sources**: the bundled ``digits`` and ``shapes``; a folder of images with no sub-folders (one class: unconditional
  models); class folders (an ImageFolder: conditional models learn the classes); the LFW layout (``lfw/<Name>/*.jpg``:
  faces, one folder per person); CIFAR, MNIST and a CSV of ``path,label`` as for ``classify``.
* **Checks**: at least :data:`MIN_IMAGES` images; one channel count -- a folder that mixes gray and colour images is
  refused unless ``--channels 1`` or ``3`` says what to convert them to; conditional models need two classes or more.
* **Pixels** are scaled to [-1, 1] (``x / 127.5 - 1``: the range of a ``tanh`` generator); :func:`to_uint8` inverts it.
* **Noise** (:class:`GenStream`): every global batch draws the tensors a model needs -- ``z`` for a generator, ``eps``
  and ``t`` for diffusion, corruption noise for a denoising autoencoder -- from the ``(seed, epoch, batch)`` generator
  of :mod:`vislab.data.base` and gives each process its strided share, as it does with the images: N processes and a
  resumed run draw exactly the noise one uninterrupted process draws. Evaluation batches get the same noise every epoch.

Example:
    >>> s = load_gen_data(GenDataConfig(data="digits", img_size=16))
    >>> len(s.train), len(s.val), s.train.channels, s.train.size, len(s.train.classes)
    (1618, 179, 1, (16, 16), 10)
    >>> st = GenStream(s.train, 32, train=True, noise={"z": ("normal", (2, 8)), "t": ("int", 1000)})
    >>> b = next(iter(st.epoch(0)))
    >>> tuple(b.x.shape), float(b.x.min()) >= -1, tuple(b.noise["z"].shape), tuple(b.noise["t"].shape)
    ((32, 1, 16, 16), True, (32, 2, 8), (32,))
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import torch

from vislab.core.config import opt
from vislab.core.errors import DataError
from vislab.data.base import ImageDataConfig, epoch_generator
from vislab.data.classify.source import BUNDLED, DATASETS, DataConfig, ImageSource, Splits, sniff_format, split_holdout
from vislab.data.classify.stream import BatchStream

MIN_IMAGES = 8  # fewer images than this are not a distribution to learn
FORMATS = ("auto", "folder", "imagefolder", "lfw", "csv", "digits", "shapes", "cifar10", "cifar100", "mnist", "fashion_mnist")
NOISE_SALT = 100_003  # keeps the noise generators apart from the augmentation ones (salt = batch + 1)


@dataclass
class GenDataConfig(ImageDataConfig):
    """Which images, at which size and channel count, how they are batched (``generate``'s ``data:``)."""

    data: str = opt("digits", "dataset: digits, shapes, or a path: a folder of images (one class), class folders (conditional models), LFW, CIFAR, MNIST, a CSV of path,label")
    format: str = opt("auto", "dataset format (auto sniffs the path; folder: every image below the path, one class)", choices=FORMATS)
    channels: str = opt("auto", "auto: the images' own (a folder mixing gray and colour is refused); 1 or 3: convert every image", choices=("auto", "1", "3"))
    augment: str = opt("auto", "none, or flip (random horizontal flips: faces, objects); auto: flip for photos, none for digits", choices=("auto", "none", "flip"))
    val_split: float = opt(0.1, "fraction held out for validation (reconstruction numbers, FID's real images)")
    workers: int = opt(0, "DataLoader worker processes for datasets read from disk")
    fast_path: str = opt("auto", "keep the decoded dataset in memory (auto: when it fits --max-memory-mb)", choices=("auto", "on", "off"))
    max_memory_mb: int = opt(4096, "largest decoded dataset the fast path keeps in memory (auto mode)")
    bad_images: str = opt("fail", "on an unreadable image: fail, or skip it with a warning", choices=("fail", "skip"))
    limit: int = opt(0, "use at most this many training images (0: all)")
    synth_count: int = opt(0, "images of the generated datasets (0: their default)")
    synth_classes: int = opt(0, "classes of the generated datasets (0: their default)")


def scale(x_uint8: torch.Tensor) -> torch.Tensor:
    """uint8 ``[0, 255]`` -> float ``[-1, 1]``."""
    return x_uint8.float() / 127.5 - 1.0


def to_uint8(x: torch.Tensor) -> torch.Tensor:
    """float ``[-1, 1]`` -> uint8 ``[0, 255]`` (clamped), on the CPU."""
    return ((x.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).cpu()


# --------------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------------
def _flat_folder(root: Path, cfg: DataConfig) -> Splits:
    """Every image below ``root`` as one class (named after the folder)."""
    from vislab.data.classify.formats._files import as_str_paths, file_sources
    from vislab.data.classify.formats.imagefolder import list_images

    files = list_images(root)
    srcs = file_sources({"train": (as_str_paths(files), [0] * len(files))}, [root.name or "images"], root.name, cfg.img_size, cfg.bad_images, "standard")
    return Splits(train=srcs["train"])


def _is_flat(root: Path) -> bool:
    from vislab.core.io import IMAGE_EXTENSIONS

    entries = [p for p in root.iterdir() if not p.name.startswith(".")]
    return not any(p.is_dir() for p in entries) and any(p.suffix.lower() in IMAGE_EXTENSIONS for p in entries)


def _source_splits(cfg: GenDataConfig) -> Splits:
    fmt, data = cfg.format, cfg.data
    path = Path(data).expanduser()
    dc = DataConfig(data=data, format="auto", img_size=cfg.img_size, val_split=0, test_split=0, split_seed=cfg.split_seed, workers=cfg.workers,
                    fast_path=cfg.fast_path, max_memory_mb=cfg.max_memory_mb, bad_images=cfg.bad_images, synth_count=cfg.synth_count,
                    synth_classes=cfg.synth_classes)
    if fmt == "auto":
        if data in BUNDLED:
            fmt = data
        elif not path.exists():
            raise DataError(f"--data: expected digits, shapes or an existing folder / CSV of images, got '{data}' (not found)")
        elif path.is_dir() and _is_flat(path):
            fmt = "folder"
        else:
            from vislab.data.embed import lfw_root

            found = lfw_root(path) if path.is_dir() else None
            fmt, path = ("imagefolder", found) if found is not None else (sniff_format(path), path)
    elif fmt == "lfw":
        from vislab.data.embed import lfw_root

        fmt, path = "imagefolder", lfw_root(path) or path
    if fmt not in BUNDLED and not path.exists():
        raise DataError(f"--data: expected an existing {fmt} dataset path, got '{path}' (not found)")
    if fmt == "folder":
        return _flat_folder(path, dc)
    return DATASETS.build(fmt, cfg=dataclasses.replace(dc, data=str(path), format=fmt), root=None if fmt in BUNDLED else path)


def _pool(splits: Splits) -> ImageSource:
    from vislab.data.embed import pooled

    return pooled(splits)


def _check_channels(src: ImageSource, want: str) -> ImageSource:
    """Refuse a folder of mixed gray and colour images (``auto``), or convert every image to ``want`` channels."""
    if src.paths is not None and want == "auto":
        from PIL import Image

        from vislab.data.classify.formats._files import GRAY_MODES

        gray = colour = 0
        example = {}
        for p in src.paths:
            with Image.open(p) as im:
                is_gray = im.mode in GRAY_MODES
            gray, colour = gray + is_gray, colour + (not is_gray)
            example.setdefault(is_gray, p)
        if gray and colour:
            raise DataError(f"{src.name}: expected images of one channel count, got {gray} gray (e.g. '{example[True]}') and {colour} colour "
                            f"(e.g. '{example[False]}'); pass --channels 1 or --channels 3 to convert them")
        return src
    if want == "auto" or int(want) == src.channels:
        return src
    c = int(want)
    if src.images is not None:
        x = src.images.float()
        x = x.repeat(1, 3, 1, 1) if c == 3 else (0.299 * x[:, :1] + 0.587 * x[:, 1:2] + 0.114 * x[:, 2:3])  # ITU-R 601 luma, as PIL's "L"
        return dataclasses.replace(src, images=x.round().clamp(0, 255).to(torch.uint8), channels=c)
    return dataclasses.replace(src, channels=c, decode=dataclasses.replace(src.decode, mode="L" if c == 1 else "RGB"))


def load_gen_data(cfg: GenDataConfig) -> Splits:
    """Train and val images of one size and channel count (see the module docstring); ``test`` is not used.

    Raises:
        DataError: a missing path, fewer than :data:`MIN_IMAGES` images, mixed channel counts (``--channels auto``),
            an odd or tiny ``--img-size``.
    """
    pool = _pool(_source_splits(cfg))
    if len(pool) < MIN_IMAGES:
        raise DataError(f"{pool.name}: expected at least {MIN_IMAGES} images to learn a distribution from, got {len(pool)}")
    pool = _check_channels(pool, cfg.channels)
    h, w = pool.size
    if h != w:
        raise DataError(f"{pool.name}: expected square images or --img-size, got {h}x{w} (pass --img-size 32 or 64)")
    splits = split_holdout(Splits(train=pool), cfg.val_split, 0.0, cfg.split_seed)
    if cfg.limit and cfg.limit < len(splits.train):
        g = torch.Generator().manual_seed(cfg.split_seed)
        splits.train = splits.train.subset(torch.randperm(len(splits.train), generator=g)[: cfg.limit].sort().values)
    return splits


def default_augment(cfg: GenDataConfig, src: ImageSource) -> str:
    """``flip`` for photos (folders, LFW, CIFAR), ``none`` for digits and other glyphs where a mirror is not a sample."""
    if cfg.augment != "auto":
        return cfg.augment
    return "none" if src.name in ("digits", "shapes", "mnist", "fashion_mnist") or src.channels == 1 else "flip"


# --------------------------------------------------------------------------------------------
# Batches with their noise
# --------------------------------------------------------------------------------------------
@dataclass
class GenBatch:
    """One process's share of a global batch: images in [-1, 1], labels, and the noise drawn for them."""

    x: torch.Tensor  # (b, C, H, W)
    y: torch.Tensor  # (b,)
    n_global: int
    noise: dict[str, torch.Tensor] = field(default_factory=dict)
    index: torch.Tensor | None = None

    def __len__(self) -> int:
        return len(self.x)


def draw_noise(spec: dict[str, tuple[str, object]], n: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    """``{name: tensor}`` for ``n`` samples from ``spec``: ``("normal", shape)``, ``("uniform", shape)`` or ``("int", high)``.

    The names are drawn in sorted order, so a spec's draws do not depend on how it was written down.
    """
    out = {}
    for name in sorted(spec):
        kind, arg = spec[name]
        if kind == "normal":
            out[name] = torch.randn((n, *arg), generator=g)
        elif kind == "uniform":
            out[name] = torch.rand((n, *arg), generator=g)
        elif kind == "int":
            out[name] = torch.randint(0, int(arg), (n,), generator=g)
        else:
            raise ValueError(f"noise {name}: expected kind normal, uniform or int, got {kind!r}")
    return out


class GenStream:
    """A :class:`~vislab.data.classify.stream.BatchStream` of images in [-1, 1], with ``noise`` drawn per global batch.

    Args:
        source: the images.
        batch_size: the global batch size.
        train: shuffle, drop the last partial batch, augment; new noise every epoch (evaluation: the same every epoch).
        noise: ``{name: (kind, shape)}`` as :func:`draw_noise` takes.
        augment: ``none`` or ``flip``.
        seed, rank, world, device, workers, fast_path, channels_last: as for ``BatchStream``.
    """

    def __init__(self, source: ImageSource, batch_size: int, *, train: bool, noise: dict[str, tuple[str, object]] | None = None,
                 augment: str = "none", seed: int = 0, rank: int = 0, world: int = 1, device: torch.device | str = "cpu",
                 workers: int = 0, fast_path: bool = True, channels_last: bool = False):
        c = source.channels
        self.inner = BatchStream(source, batch_size, train=train, device=torch.device(device), mean=(0.5,) * c, std=(0.5,) * c,
                                 augment="flip" if augment == "flip" else "none", seed=seed, rank=rank, world=world, workers=workers,
                                 channels_last=channels_last, fast_path=fast_path)
        self.src, self.train, self.noise, self.seed, self.rank, self.world = source, train, dict(noise or {}), seed, rank, world
        self.device = torch.device(device)
        self.batch_size = self.inner.batch_size

    def __len__(self) -> int:
        return len(self.inner)

    def epoch(self, epoch: int) -> Iterator[GenBatch]:
        for k, b in enumerate(self.inner.epoch(epoch)):
            g = epoch_generator(self.seed, epoch if self.train else 0, salt=NOISE_SALT + k)
            noise = {n: t[self.rank::self.world].to(self.device) for n, t in draw_noise(self.noise, b.n_global, g).items()}
            yield GenBatch(b.x, b.y, b.n_global, noise, b.index)
