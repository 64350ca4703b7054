"""Reading segmentation masks from folders: index PNGs, palette (RGB) PNGs, binary masks, class maps.

Layout (``root`` is ``--data``)::

    root/images/<stem>.<png|jpg|...>      root/masks/<stem>.png      root/classes.txt (optional)
    # or root/train/{images,masks}, root/val/{...}, root/test/{...}

A class map has one class per line, ``name`` or ``name R G B`` (the colour of the class in palette
masks); line order = class index; ``#`` starts a comment. Mask files are decoded by mode:

* ``index``: a gray (``L``) or palettised (``P``, e.g. Pascal VOC) PNG whose pixel values are class
  indices; 255 (``--ignore-index``) is ignored;
* ``palette``: an RGB PNG whose colours are looked up in the class map;
* ``binary``: 0 = class 0, > 127 = class 1 (foreground masks exported from other tools).

Every problem names the file: a mask of another size than its image, a class index out of range, a
colour not in the class map, an image without a mask.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS
from vislab.data.segment.source import SegDataConfig, SegSource, SegSplits, default_palette, holdout


def read_class_map(path: str | Path) -> tuple[list[str], list[tuple[int, int, int]] | None]:
    """Class names and (when every line has one) RGB colours from a class map file.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "classes.txt")
        >>> _ = open(p, "w").write("background 0 0 0\\nperson 192 128 128\\n")
        >>> read_class_map(p)
        (['background', 'person'], [(0, 0, 0), (192, 128, 128)])
    """
    p = Path(path)
    if not p.is_file():
        raise DataError(f"class map '{p}': expected a file with one class per line, got no such file")
    names, colours = [], []
    for ln, line in enumerate(p.read_text().splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        parts = line.replace(",", " ").split()
        if len(parts) == 1:
            names.append(parts[0])
            colours.append(None)
        elif len(parts) == 4 and all(s.isdigit() and int(s) < 256 for s in parts[1:]):
            names.append(parts[0])
            colours.append(tuple(int(s) for s in parts[1:]))
        else:
            raise DataError(f"class map '{p}' line {ln}: expected 'name' or 'name R G B' (0..255), got '{line}'")
    if not names:
        raise DataError(f"class map '{p}': expected at least one class, got none")
    if len(set(names)) != len(names):
        raise DataError(f"class map '{p}': expected distinct class names, got {names}")
    if all(c is not None for c in colours):
        return names, colours  # type: ignore[return-value]
    return names, None


def decode_mask(path: Path, mode: str, k: int | None, colours: list[tuple[int, int, int]] | None, ignore_index: int) -> np.ndarray:
    """A mask file -> ``(H, W)`` uint8 class indices (see the module docstring for ``mode``)."""
    from PIL import Image

    try:
        with Image.open(path) as im:
            im.load()
            pil_mode = im.mode
            a = np.asarray(im)
    except (OSError, ValueError) as e:
        raise DataError(f"mask '{path}': expected a readable image, got {type(e).__name__}: {e}") from None
    if mode == "auto":
        mode = "palette" if a.ndim == 3 else "index"
    if mode == "palette":
        if colours is None:
            raise DataError(f"mask '{path}': expected a class map with 'name R G B' lines for colour masks, got none (write <data>/classes.txt or pass --class-map)")
        rgb = a[..., :3] if a.ndim == 3 else np.repeat(a[..., None], 3, -1)
        if pil_mode == "P":  # colours of a palettised PNG: look its palette up
            with Image.open(path) as im:
                rgb = np.asarray(im.convert("RGB"))
        code = (rgb[..., 0].astype(np.int32) << 16) | (rgb[..., 1].astype(np.int32) << 8) | rgb[..., 2]
        lut = {(r << 16) | (g << 8) | b: i for i, (r, g, b) in enumerate(colours)}
        lut.setdefault((224 << 16) | (224 << 8) | 192, ignore_index)  # VOC's boundary colour
        uniq, inv = np.unique(code, return_inverse=True)
        vals = np.array([lut.get(int(u), -1) for u in uniq])
        if (vals < 0).any():
            c = int(uniq[vals < 0][0])
            raise DataError(f"mask '{path}': expected colours of the class map, got RGB {(c >> 16, (c >> 8) & 255, c & 255)} which is not in it")
        out = vals[inv].reshape(code.shape)
        return out.astype(np.uint8)
    if a.ndim == 3:
        a = a[..., 0] if np.all(a[..., :3] == a[..., :1]) else None  # type: ignore[assignment]
        if a is None:
            raise DataError(f"mask '{path}': expected a one-channel {mode} mask, got a colour image (use --mask-mode palette with a class map)")
    if mode == "binary":
        return (a > 127).astype(np.uint8)
    a = a.astype(np.int64)
    if k is not None:
        bad = (a >= k) & (a != ignore_index)
        if bad.any():
            raise DataError(f"mask '{path}': expected class indices in [0, {k - 1}] or {ignore_index} (ignore), got {int(a[bad][0])}")
    if a.max(initial=0) > 255:
        raise DataError(f"mask '{path}': expected class indices < 256, got {int(a.max())}")
    return a.astype(np.uint8)


def _pairs(folder: Path) -> list[tuple[Path, Path]]:
    imgs = sorted(f for f in (folder / "images").iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS)
    if not imgs:
        raise DataError(f"dataset '{folder}': expected images in '{folder / 'images'}', got none")
    masks = {f.stem: f for f in (folder / "masks").iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS} if (folder / "masks").is_dir() else {}
    out = []
    for f in imgs:
        if f.stem not in masks:
            raise DataError(f"image '{f}': expected a mask '{folder / 'masks' / (f.stem + '.png')}', got none")
        out.append((f, masks[f.stem]))
    return out


def to_tensors(img: np.ndarray, mask: np.ndarray, size: tuple[int, int] | None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(H, W, C)`` uint8 image + ``(H, W)`` mask -> ``(C, h, w)`` and ``(h, w)`` uint8 at ``size``
    (bilinear with antialiasing for the image, nearest for the mask; ``None``: unchanged)."""
    import torch.nn.functional as F

    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
    m = torch.from_numpy(np.ascontiguousarray(mask))
    if size is not None and tuple(x.shape[1:]) != tuple(size):
        x = F.interpolate(x[None].float(), size=size, mode="bilinear", antialias=True, align_corners=False)[0].round().clamp(0, 255).byte()
        m = F.interpolate(m[None, None].float(), size=size, mode="nearest-exact")[0, 0].byte()
    return x, m


def _read_split(folder: Path, cfg: SegDataConfig, classes: list[str] | None, colours, size: tuple[int, int] | None) -> SegSource:
    from vislab.core.io import read_image

    pairs = _pairs(folder)
    ims, ms = [], []
    channels = None
    k = len(classes) if classes else None
    for img_p, mask_p in pairs:
        try:
            img = read_image(img_p, "RGB")
        except DataError:
            raise
        except Exception as e:  # noqa: BLE001 -- any decoder failure becomes one line naming the file
            raise DataError(f"image '{img_p}': expected a readable image, got {type(e).__name__}: {e}") from None
        mask = decode_mask(mask_p, cfg.mask_mode, k, colours, cfg.ignore_index)
        if img.shape[:2] != mask.shape:
            raise DataError(f"mask '{mask_p}': expected the size of its image '{img_p.name}' {img.shape[0]}x{img.shape[1]}, got {mask.shape[0]}x{mask.shape[1]}")
        x, m = to_tensors(img, mask, size)
        size = size or (int(x.shape[1]), int(x.shape[2]))
        channels = x.shape[0]
        ims.append(x)
        ms.append(m)
    assert channels is not None
    images, masks = torch.stack(ims), torch.stack(ms)
    if classes is None:
        valid = masks[masks != cfg.ignore_index]
        kk = int(valid.max()) + 1 if len(valid) else 1
        classes = ["background", "foreground"] if cfg.mask_mode == "binary" else [f"class{i}" for i in range(max(kk, 2))]
    return SegSource(images, masks, classes, colours or default_palette(len(classes)), folder.name,
                     cfg.ignore_index, [p[0].stem for p in pairs])


def read_mask_folder(cfg: SegDataConfig) -> SegSplits:
    """Read a mask-folder dataset (see the module docstring) into memory."""
    root = Path(cfg.data).expanduser()
    if not root.is_dir():
        raise DataError(f"dataset '{cfg.data}': expected 'shapes' or a folder with images/ and masks/, got no such folder")
    cmap = Path(cfg.class_map) if cfg.class_map else root / "classes.txt"
    classes, colours = read_class_map(cmap) if (cfg.class_map or cmap.is_file()) else (None, None)
    size = (cfg.img_size, cfg.img_size) if cfg.img_size else None
    if (root / "train" / "images").is_dir():
        train = _read_split(root / "train", cfg, classes, colours, size)
        classes, size = train.classes, train.size
        val = _read_split(root / "val", cfg, classes, colours, size) if (root / "val" / "images").is_dir() else None
        test = _read_split(root / "test", cfg, classes, colours, size) if (root / "test" / "images").is_dir() else None
        if val is None:
            train, val, _ = holdout(train, cfg.val_split, 0.0, cfg.split_seed)
        return SegSplits(train, val, test)
    if not (root / "images").is_dir():
        raise DataError(f"dataset '{root}': expected an images/ folder (and masks/), or train/images/, got neither")
    train, val, test = holdout(_read_split(root, cfg, classes, colours, size), cfg.val_split, cfg.test_split, cfg.split_seed)
    return SegSplits(train, val, test)


def write_index_png(mask: np.ndarray, path: str | Path, palette: list[tuple[int, int, int]]) -> None:
    """Write ``(H, W)`` class indices as a palettised PNG (values = classes; viewers show the colours)."""
    from PIL import Image

    from vislab.core.io import atomic_path

    im = Image.fromarray(np.asarray(mask, dtype=np.uint8), mode="P")
    flat = [c for rgb in palette for c in rgb]
    im.putpalette(flat + [0] * (768 - len(flat)))
    with atomic_path(path) as tmp:
        im.save(tmp, format="PNG")
