"""File I/O: atomic writes, image reading with explicit mode conversion, run provenance.

Example:
    >>> import tempfile, os
    >>> d = tempfile.mkdtemp()
    >>> atomic_write_text(os.path.join(d, "a.txt"), "hi")
    >>> open(os.path.join(d, "a.txt")).read()
    'hi'
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


_UMASK: int | None = None


def _file_mode() -> int:
    """The mode a plain ``open(path, "w")`` would give: 0o666 minus the user's umask (read once, when first needed)."""
    global _UMASK
    if _UMASK is None:
        _UMASK = os.umask(0)
        os.umask(_UMASK)
    return 0o666 & ~_UMASK


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, keep_previous: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success it replaces ``path`` in one rename (with the permissions of a
    normally written file, not the temporary file's 0600). ``keep_previous``: a file name beside ``path`` that the
    file being replaced is renamed to first (so the two most recent versions exist).

    A crash or kill while writing leaves the old file untouched (and no half-written new one).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            yield Path(tmp)
        except OSError as e:  # name the file being written, not its temporary twin
            if e.filename is not None and str(e.filename) == str(tmp):
                raise OSError(e.errno, e.strerror, str(path)) from None
            raise
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, _file_mode())
        if keep_previous and path.exists():
            os.replace(path, path.with_name(keep_previous))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    atomic_write_bytes(path, text.encode())


def read_image(path: str | os.PathLike, mode: str = "RGB") -> np.ndarray:
    """Read an image file as ``(H, W, C)`` uint8, converting every mode explicitly.

    Grayscale, RGBA (composited on white), palette, 16-bit and CMYK images are converted to
    ``mode`` ("RGB" or "L"). 16-bit images are scaled to 8 bits, not clipped.

    Raises:
        DataError: the file is missing, empty or not a readable image (the message names the file).
    """
    from PIL import Image, UnidentifiedImageError

    p = Path(path)
    if not p.is_file():
        raise DataError(f"image '{p}': expected an existing file, got nothing at that path")
    if p.stat().st_size == 0:
        raise DataError(f"image '{p}': expected image data, got an empty file")
    try:
        with Image.open(p) as im:
            im.load()
            return pil_to_array(im, mode)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise DataError(f"image '{p}': expected a readable image, got a corrupt or unknown file ({e.__class__.__name__})") from None


def pil_to_array(im, mode: str = "RGB") -> np.ndarray:
    """Convert a PIL image of any mode to ``(H, W, C)`` uint8 in ``mode`` ("RGB" or "L")."""
    from PIL import Image

    if mode not in ("RGB", "L"):
        raise DataError(f"read_image: expected mode 'RGB' or 'L', got {mode!r}")
    if im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        a = np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
        im = Image.fromarray(a, mode="L")
    if im.mode == "P":
        im = im.convert("RGBA") if "transparency" in im.info else im.convert("RGB")
    if im.mode in ("RGBA", "LA", "PA"):
        rgba = im.convert("RGBA")
        bg = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        im = Image.alpha_composite(bg, rgba)
    im = im.convert(mode)
    a = np.asarray(im, dtype=np.uint8)
    return a[:, :, None] if a.ndim == 2 else a


def git_revision(cwd: str | os.PathLike | None = None) -> str:
    """The git commit (with ``+dirty``) of the source tree vislab runs from, or ``'unknown'``."""
    here = Path(cwd) if cwd else Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        if rev.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "-uno"], cwd=here, capture_output=True, text=True, timeout=5)
        return rev.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 24) -> str:
    """The sha256 hex digest of a file, read ``chunk`` bytes at a time (files larger than memory)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def csv_cell(s: str) -> str:
    """``s`` as one CSV field: quoted (inner quotes doubled) when it holds a comma, a quote or a newline.

    Example:
        >>> csv_cell("a.png"), csv_cell('say "hi", twice')
        ('a.png', '"say ""hi"", twice"')
    """
    return '"' + s.replace('"', '""') + '"' if any(c in s for c in ',"\n') else s
