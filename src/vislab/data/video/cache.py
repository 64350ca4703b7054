"""Decoded videos cached on disk, so that the second epoch reads frames instead of decoding them again.

A video decoded at one size (and gray or RGB) is stored once as ``<root>/<key>.npy``, uint8 ``(T, H, W, C)``, and
read back memory-mapped (``np.load(mmap_mode="r")``): opening it reads only the header, slicing a clip reads only
those frames' pages. The key is the sha1 of the file's absolute path, its modification time (ns) and byte size, the
size and gray flag, and :data:`FORMAT_VERSION`: an edited or replaced video gets a new key (its old entry is simply
never read again). Other arrays (optical flow as float16, ...) use the same storage through :meth:`VideoCache.array`.

Writes go to a temporary file in the cache folder and are renamed into place (``os.replace``), so processes that
compute the same entry at once (DDP ranks, loader workers) are safe: the last rename wins, both wrote the same
bytes, and a reader never sees half a file. A file that cannot be read back (truncated by a full disk or a crash,
garbage) is recomputed and rewritten, not an error. Entries are never evicted: delete the folder to reclaim space.

Example:
    >>> import tempfile, os, numpy as np
    >>> from vislab.data.video.io import write_video
    >>> d = tempfile.mkdtemp()
    >>> p = write_video(os.path.join(d, "a.mp4"), np.zeros((6, 32, 32, 3), np.uint8), fps=10)
    >>> cache = VideoCache(os.path.join(d, "cache"))
    >>> cache.frames(p, (16, 16), gray=False).shape
    (6, 16, 16, 3)
    >>> type(cache.frames(p, (16, 16), gray=False)).__name__  # the second time: memory-mapped, not decoded
    'memmap'
    >>> cache.stats()["hits"], cache.stats()["misses"]
    (1, 1)
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError
from vislab.core.io import _file_mode

log = logging.getLogger(__name__)

FORMAT_VERSION = 1  # bump when what a key stands for changes (the decoder's colour conversion, the resize, ...)


def default_cache_dir() -> Path:
    """``$VISLAB_CACHE`` if set (and not empty), else ``~/.cache/vislab/video``.

    Example:
        >>> import os
        >>> saved = os.environ.copy()
        >>> os.environ["VISLAB_CACHE"] = "/tmp/vc"; str(default_cache_dir())
        '/tmp/vc'
        >>> del os.environ["VISLAB_CACHE"]; default_cache_dir().parts[-3:]
        ('.cache', 'vislab', 'video')
        >>> os.environ.update(saved)
    """
    env = os.environ.get("VISLAB_CACHE", "")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vislab" / "video"


def source_signature(path: str | os.PathLike) -> tuple[str, int, int]:
    """``(absolute path, mtime_ns, bytes)`` of a video file; for a frame folder the newest mtime_ns of the folder and its
    frames, and the frames' total bytes mixed with a checksum of their names (and so a frame added, removed, renamed or
    rewritten changes it)."""
    from vislab.data.video.io import frame_files

    p = Path(path).resolve()
    if p.is_dir():
        files = frame_files(p)
        if not files:
            raise DataError(f"frame folder {p}: expected image files, got none")
        import zlib

        stats = [f.stat() for f in files]
        names = zlib.crc32("\n".join(f.name for f in files).encode())  # a renamed or reordered frame changes it too
        return (str(p), max(p.stat().st_mtime_ns, *(s.st_mtime_ns for s in stats)), sum(s.st_size for s in stats) + len(files) + (names << 40))
    try:
        st = p.stat()
    except FileNotFoundError:
        raise DataError(f"video {p}: expected an existing file, got no such file") from None
    return (str(p), st.st_mtime_ns, st.st_size)


class VideoCache:
    """Decoded videos (and other arrays) cached as ``.npy`` files under ``root``; ``root=None``: no cache, every call
    decodes / computes again (and nothing is kept in memory either).

    Returned arrays are read-only (memory-mapped on a hit; a read-only view of the new array on a miss, so that an
    in-place edit fails in the first epoch as it would in the second): copy before changing them.
    """

    def __init__(self, root: str | os.PathLike | None):
        self.root = Path(root).expanduser() if root is not None else None
        self.hits = self.misses = self.bytes_written = self.recomputed = 0
        self._warned = False

    def __repr__(self) -> str:
        return f"VideoCache({str(self.root)!r})" if self.root is not None else "VideoCache(None)"

    @staticmethod
    def key(key_parts: tuple) -> str:
        """The file stem of an entry: sha1 of the parts (with :data:`FORMAT_VERSION`)."""
        return hashlib.sha1(repr((FORMAT_VERSION, *key_parts)).encode()).hexdigest()

    def path(self, key_parts: tuple) -> Path | None:
        """Where the entry of ``key_parts`` is (or would be) stored; None without a cache folder."""
        return None if self.root is None else self.root / f"{self.key(key_parts)}.npy"

    def frames(self, path: str | os.PathLike, size: int | Sequence[int] | None = None, gray: bool = False) -> np.ndarray:
        """The whole video (file or frame folder) decoded at ``size`` ``(H, W)`` (None: its own), RGB or gray, as
        ``(T, H, W, C)`` uint8 -- from the cache when it is there, else decoded and stored."""
        from vislab.data.video.io import _size, read_video

        hw = _size(size)
        parts = ("frames", *source_signature(path), hw, bool(gray))
        return self.array(parts, lambda: read_video(path, size=hw, gray=gray))

    def clip(self, path: str | os.PathLike, indices: Sequence[int] | np.ndarray, size: int | Sequence[int] | None = None,
             gray: bool = False) -> np.ndarray:
        """Frames ``indices`` of a video as a new ``(len(indices), H, W, C)`` uint8 array (writable, contiguous): a
        slice of :meth:`frames` with a cache folder; without one, ``read_video(indices=...)``, which decodes only up
        to the last index and converts only those frames (several times faster than decoding the whole video)."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        if self.root is None:
            from vislab.data.video.io import read_video

            self.misses += 1
            return read_video(path, size=size, gray=gray, indices=idx.tolist())
        a = self.frames(path, size, gray)
        if len(idx) and (idx.min() < 0 or idx.max() >= len(a)):
            bad = int(idx[(idx < 0) | (idx >= len(a))][0])
            raise DataError(f"video {path}: expected frame {bad}, got a video of {len(a)} frames")
        return np.ascontiguousarray(np.asarray(a[idx]))

    def array(self, key_parts: tuple, compute: Callable[[], np.ndarray]) -> np.ndarray:
        """The array stored under ``key_parts`` (anything with a stable ``repr``: strings, Python numbers, tuples; not
        numpy scalars, whose repr changed in numpy 2), or ``compute()`` stored there first. Any dtype and shape
        except object arrays."""
        file = self.path(key_parts)
        if file is not None and file.exists():
            try:
                a = np.load(file, mmap_mode="r", allow_pickle=False)
                self.hits += 1
                return a
            except (ValueError, OSError, EOFError) as e:  # truncated or garbage: compute it again
                log.warning("video cache: recomputing %s (%s)", file.name, e)
                self.recomputed += 1
        self.misses += 1
        a = np.asarray(compute())
        if file is not None:
            self._store(file, a)
        view = a.view()
        view.flags.writeable = False
        return view

    def _store(self, file: Path, a: np.ndarray) -> None:
        tmp = None
        try:
            file.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{file.stem}.", suffix=".tmp", dir=file.parent)
            with os.fdopen(fd, "wb") as f:
                np.save(f, np.ascontiguousarray(a), allow_pickle=False)
                n = f.tell()
            os.chmod(tmp, _file_mode())  # mkstemp's 0600 would hide the cache from the group
            os.replace(tmp, file)
            tmp = None
            self.bytes_written += n
        except OSError as e:  # a full disk or a read-only folder: train on, decoding every time
            if not self._warned:
                log.warning("video cache: cannot write to %s (%s); decoding without a cache", file.parent, e)
                self._warned = True
        finally:
            if tmp is not None and os.path.exists(tmp):
                os.unlink(tmp)

    def stats(self) -> dict[str, int]:
        """Counts since this cache was made: ``hits``, ``misses`` (decoded / computed), ``bytes_written``,
        ``recomputed`` (unreadable entries computed again)."""
        return {"hits": self.hits, "misses": self.misses, "bytes_written": self.bytes_written, "recomputed": self.recomputed}
