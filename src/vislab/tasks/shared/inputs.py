"""Inputs of predict / explain commands: files, folders and globs -> image paths; images -> normalised batches."""

from __future__ import annotations

import glob
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".webm")


def expand_inputs(inputs: list[str], suffixes: tuple[str, ...] = IMAGE_EXTENSIONS, what: str = "images",
                  is_item: Callable[[Path], bool] | None = None) -> list[Path]:
    """Files from paths, folders (recursive) and glob patterns whose suffix is one of ``suffixes``, in a stable order.
    ``is_item(folder)``: folders that are inputs themselves (a video's frame folder), given or found inside a folder.

    Raises:
        DataError: no inputs, a path that does not exist, a folder or pattern without any such file.
    """
    if not inputs:
        raise DataError(f"predict: expected at least one of {what}, a folder or a glob, got none")
    files: list[Path] = []
    for item in inputs:
        p = Path(item).expanduser()
        if p.is_dir() and is_item is not None and is_item(p):
            files.append(p)
        elif p.is_dir():
            found = sorted(f for f in p.rglob("*") if f.suffix.lower() in suffixes and f.is_file())
            if is_item is not None:
                found += sorted(d for d in p.rglob("*") if d.is_dir() and is_item(d))
            if not found:
                raise DataError(f"predict: expected {what} in folder '{p}', got none")
            files += found
        elif p.is_file():
            files.append(p)
        elif any(ch in item for ch in "*?["):
            found = sorted(Path(f) for f in glob.glob(item, recursive=True) if Path(f).suffix.lower() in suffixes)
            if not found:
                raise DataError(f"predict: expected the pattern '{item}' to match {what}, got no match")
            files += found
        else:
            raise DataError(f"predict: expected an existing image, folder or glob, got '{item}' (not found)")
    return files


def preprocess(arrays: list[np.ndarray], size: tuple[int, int], mean, std) -> torch.Tensor:
    """``(H, W, C)`` uint8 arrays -> normalised ``(B, C, h, w)`` float (bilinear resize, antialiased)."""
    import torch.nn.functional as F

    out = []
    for a in arrays:
        x = torch.from_numpy(np.array(a, copy=True)).permute(2, 0, 1)[None].float()
        if tuple(x.shape[-2:]) != tuple(size):
            x = F.interpolate(x, size=tuple(size), mode="bilinear", antialias=True, align_corners=False).clamp(0, 255).round()
        out.append(x[0])
    x = torch.stack(out) / 255.0
    return normalize(x, mean, std)


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """``(B, C, H, W)`` in [0, 1] -> ``(x - mean) / std`` per channel (on ``x``'s device)."""
    m = torch.as_tensor(mean, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    s = torch.as_tensor(std, dtype=x.dtype, device=x.device).view(1, -1, 1, 1)
    return (x - m) / s


def image_batch(img: np.ndarray, mean, std) -> torch.Tensor:
    """One ``(H, W, C)`` uint8 image -> a normalised ``(1, C, H, W)`` float batch at its own size."""
    x = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))[None].float() / 255.0
    return normalize(x, mean, std)
