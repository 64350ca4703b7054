"""Video files in and out: PyAV (FFmpeg, bundled in its wheel) reads mp4 / avi / mkv / webm / mov / gif and writes
H.264 mp4 (plays in a browser), MPEG-4 avi, VP9 webm; GIFs are written with Pillow. Frame folders (one image per
frame, sorted by name) read like videos.

Frames are ``(T, H, W, C)`` uint8 arrays, RGB (``C = 3``) or gray (``C = 1``). Why PyAV: torchcodec needs FFmpeg's
shared libraries installed on the system (it does not load here without them) and OpenCV's writer cannot make H.264;
PyAV's decoder with an I420 -> RGB conversion by OpenCV is as fast as OpenCV's reader (``bench/video_speed.py``).

Example:
    >>> import tempfile, os, numpy as np
    >>> d = tempfile.mkdtemp()
    >>> frames = np.zeros((5, 32, 48, 3), np.uint8); frames[:, 8:24, 8:24] = 200
    >>> p = write_video(os.path.join(d, "a.mp4"), frames, fps=10)
    >>> info = video_info(p); (info.frames, info.height, info.width)
    (5, 32, 48)
    >>> read_video(p, size=(16, 24), gray=True).shape
    (5, 16, 24, 1)

Long videos stream, one frame in memory at a time:
    >>> with VideoWriter(os.path.join(d, "b.mp4"), fps=10) as w:
    ...     for f in iter_frames(p):
    ...         w.write(255 - f)
    >>> video_info(w.path).frames
    5
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from vislab.core.errors import DataError
from vislab.core.io import IMAGE_EXTENSIONS, atomic_path

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v", ".mpg", ".mpeg", ".gif")
WRITE_EXTENSIONS = (".mp4", ".avi", ".mkv", ".webm", ".gif")
FRAME_EXTENSIONS = tuple(e for e in IMAGE_EXTENSIONS if e != ".gif")
FOLDER_FPS = 10.0  # frame folders (and files that do not say) have no frame rate: outputs and times assume this one


@dataclass(frozen=True)
class VideoInfo:
    """What a video (or frame folder) is: frame count, frames per second, size."""

    path: str
    frames: int
    fps: float
    height: int
    width: int


def is_video_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in VIDEO_EXTENSIONS


def frame_files(folder: str | os.PathLike) -> list[Path]:
    """The image files of a frame folder, sorted by name (``0001.jpg``, ``0002.jpg``, ...)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in FRAME_EXTENSIONS and not p.name.startswith("."))


def _open(path: Path):
    import av

    if not path.exists():
        raise DataError(f"video {path}: expected an existing file, got no such file")
    if path.stat().st_size == 0:
        raise DataError(f"video {path}: expected a readable video ({', '.join(VIDEO_EXTENSIONS)}), got an empty file (0 bytes)")
    try:
        c = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise DataError(f"video {path}: expected a readable video ({', '.join(VIDEO_EXTENSIONS)}), got data FFmpeg cannot open ({e})") from None
    if not c.streams.video:
        c.close()
        raise DataError(f"video {path}: expected a video stream, got a file with none (audio only?)")
    return c


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count (exact: counted from the packets when the container does not say), fps and size of a video
    file or a frame folder (fps 0 for a folder)."""
    import av

    path = Path(path)
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise DataError(f"frame folder {path}: expected image files ({', '.join(FRAME_EXTENSIONS)}), got none")
        from PIL import Image

        with Image.open(files[0]) as im:
            w, h = im.size
        return VideoInfo(str(path), len(files), 0.0, h, w)
    with _open(path) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate or s.guessed_rate or 0)
        n = int(s.frames or 0)
        try:
            if n <= 0:  # mkv / webm / gif often do not store it: count the packets (no decoding)
                n = sum(1 for p in c.demux(s) if p.size)
        except av.FFmpegError as e:
            raise DataError(f"video {path}: expected a readable video, got a damaged stream ({e})") from None
        return VideoInfo(str(path), n, fps, int(s.codec_context.height), int(s.codec_context.width))


def _to_rgb(frame) -> np.ndarray:
    """One decoded frame as ``(H, W, 3)`` uint8 RGB (I420 converted by OpenCV: faster than swscale's RGB)."""
    import cv2

    if frame.format.name == "yuv420p" and frame.width % 2 == 0 and frame.height % 2 == 0:
        return cv2.cvtColor(frame.to_ndarray(format="yuv420p"), cv2.COLOR_YUV2RGB_I420)
    try:  # one thread: PyAV >= 17 threads swscale by default, and waking its threads costs ms on a small, busy frame
        return frame.to_ndarray(format="rgb24", threads=1)
    except TypeError:  # PyAV < 17: no threads argument (and no threaded reformat)
        return frame.to_ndarray(format="rgb24")


def _resize(a: np.ndarray, size: tuple[int, int] | None, gray: bool) -> np.ndarray:
    import cv2

    if size is not None and (a.shape[0], a.shape[1]) != tuple(size):
        h, w = size
        interp = cv2.INTER_AREA if h < a.shape[0] else cv2.INTER_LINEAR
        a = cv2.resize(a, (w, h), interpolation=interp)
    if gray:
        a = cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 and a.shape[-1] == 3 else a.reshape(a.shape[0], a.shape[1])
        a = a[..., None]
    return a


def resize_frames(frames: np.ndarray, size: int | Sequence[int] | None, gray: bool = False) -> np.ndarray:
    """Frames ``(T, H, W, C)`` uint8 resized to ``size`` (``(h, w)`` or a square) as the readers resize them (area
    averaging when shrinking), and made gray with ``gray``: ``(T, h, w, 1 or C)``."""
    hw = _size(size)
    return np.stack([_resize(f, hw, gray) for f in frames])


def _size(size: int | Sequence[int] | None) -> tuple[int, int] | None:
    if size is None or size == 0:
        return None
    if isinstance(size, int):
        return (size, size)
    return (int(size[0]), int(size[1]))


def _decoded(c, path: Path) -> Iterator:
    """The decoded frames of an open container's first video stream. A stream FFmpeg cannot decode is a DataError
    before the first frame; after it (a truncated file) the frames decoded before the damage are kept, as every
    player does."""
    import av

    s = c.streams.video[0]
    s.thread_type = "AUTO"
    n = 0
    try:
        for fr in c.decode(s):
            n += 1
            yield fr
    except av.FFmpegError as e:
        if not n:
            raise DataError(f"video {path}: expected a readable video, got a stream FFmpeg cannot decode ({e})") from None


def read_video(path: str | os.PathLike, size: int | Sequence[int] | None = None, gray: bool = False,
               indices: Sequence[int] | None = None) -> np.ndarray:
    """Decode a video file (or read a frame folder) into ``(T, H, W, C)`` uint8.

    Args:
        size: resize every frame to ``(H, W)`` (an int: a square); None keeps the video's size.
        gray: one channel (``C = 1``) instead of RGB.
        indices: only these frame indices, in this order (repeats allowed); decoding stops after the largest.

    Raises:
        DataError: a missing, empty or undecodable file, an index past the last frame, a frame folder of mixed sizes.
    """
    path = Path(path)
    hw = _size(size)
    if path.is_dir():
        return read_frames(path, hw, gray, indices)
    want = set(int(i) for i in indices) if indices is not None else None  # a set: membership per decoded frame
    last = max(want) if want else None
    got: dict[int, np.ndarray] = {}
    frames: list[np.ndarray] = []
    decoded = 0  # frames decoded (the video's length when an index is past its end)
    with _open(path) as c:
        for i, fr in enumerate(_decoded(c, path)):
            decoded = i + 1
            if want is None:
                frames.append(_resize(_to_rgb(fr), hw, gray))
            elif i in want:
                got[i] = _resize(_to_rgb(fr), hw, gray)
            if last is not None and i >= last:
                break
    if want is None:
        if not frames:
            raise DataError(f"video {path}: expected at least one frame, got none")
        return np.stack(frames)
    missing = sorted(i for i in want if i not in got)
    if missing:
        raise DataError(f"video {path}: expected frame {missing[0]}, got a video of {decoded} frames")
    return np.stack([got[int(i)] for i in indices])  # type: ignore[union-attr]


def iter_frames(path: str | os.PathLike, size: int | Sequence[int] | None = None, gray: bool = False) -> Iterator[np.ndarray]:
    """The frames of a video file (or frame folder) one by one, ``(H, W, C)`` uint8 (RGB, or ``C = 1`` with
    ``gray``): :func:`read_video` without holding the whole video in memory.

    A missing, empty or unopenable file (or an empty frame folder) is a DataError here, before the first frame; a
    stream that decodes no frame, or a folder frame of another size than the first, is one when iteration reaches
    it. Stopping early (``break``, or closing the iterator) closes the file.
    """
    path = Path(path)
    hw = _size(size)
    if path.is_dir():
        files = frame_files(path)
        if not files:
            raise DataError(f"frame folder {path}: expected image files ({', '.join(FRAME_EXTENSIONS)}), got none")
        return _folder_frames(path, files, hw, gray)
    return _file_frames(path, _open(path), hw, gray)


def _file_frames(path: Path, c, hw: tuple[int, int] | None, gray: bool) -> Iterator[np.ndarray]:
    try:
        n = 0
        for fr in _decoded(c, path):
            n += 1
            yield _resize(_to_rgb(fr), hw, gray)
        if not n:
            raise DataError(f"video {path}: expected at least one frame, got none")
    finally:
        c.close()


def _folder_frames(folder: Path, files: Sequence[Path], hw: tuple[int, int] | None, gray: bool) -> Iterator[np.ndarray]:
    """The images ``files`` of a frame folder, each the first one's size (mixed sizes are an error, not a silent
    resize)."""
    from vislab.core.io import read_image

    first = None
    for p in files:
        a = read_image(p, "RGB")
        if first is None:
            first = a.shape[:2]
        elif a.shape[:2] != first:
            raise DataError(f"frame folder {folder}: expected every frame {first[1]}x{first[0]} like the first, got {p.name} "
                            f"of {a.shape[1]}x{a.shape[0]} (mixed sizes)")
        yield _resize(a, hw, gray)


def read_frames(folder: str | os.PathLike, size: int | Sequence[int] | None = None, gray: bool = False,
                indices: Sequence[int] | None = None) -> np.ndarray:
    """A frame folder as ``(T, H, W, C)`` uint8 (frames sorted by file name). Without ``size``, every frame must
    have the first one's size (a folder of mixed sizes is an error, not a silent resize)."""
    folder = Path(folder)
    files = frame_files(folder)
    if not files:
        raise DataError(f"frame folder {folder}: expected image files ({', '.join(FRAME_EXTENSIONS)}), got none")
    pick = [files[i] if 0 <= i < len(files) else None for i in indices] if indices is not None else files
    if any(p is None for p in pick):
        bad = next(i for i, p in zip(indices, pick, strict=True) if p is None)  # type: ignore[arg-type]
        raise DataError(f"frame folder {folder}: expected frame {bad}, got a folder of {len(files)} frames")
    return np.stack(list(_folder_frames(folder, pick, _size(size), gray)))  # type: ignore[arg-type]


def _frames_array(frames: np.ndarray | Iterable[np.ndarray]) -> np.ndarray:
    a = np.asarray(frames) if isinstance(frames, np.ndarray) else np.stack(list(frames))
    if a.ndim == 3:
        a = a[..., None]
    if a.ndim != 4 or a.shape[-1] not in (1, 3) or len(a) == 0:
        raise DataError(f"write_video: expected frames (T, H, W, 1|3) with T >= 1, got shape {tuple(a.shape)}")
    if a.dtype != np.uint8:
        a = np.clip(a.astype(np.float32) * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a


def _check_write_ext(path: Path) -> str:
    ext = path.suffix.lower()
    if ext not in WRITE_EXTENSIONS:
        raise DataError(f"video {path}: expected one of {', '.join(WRITE_EXTENSIONS)} to write, got '{ext or '(no extension)'}'")
    return ext


def write_video(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float = 10.0, quality: int = 18) -> Path:
    """Write frames ``(T, H, W, C)`` (uint8, or float in [0, 1]) to ``path``; the extension picks the format:
    ``.mp4`` / ``.mkv`` H.264 (odd sizes padded by one edge pixel), ``.avi`` MPEG-4, ``.webm`` VP9, ``.gif``.
    ``quality``: the H.264 / VP9 constant-quality level (lower is better; 18 is visually lossless). Atomic.
    (:class:`VideoWriter` writes the same files a frame at a time.)"""
    path = Path(path)
    ext = _check_write_ext(path)
    a = _frames_array(frames)
    if ext == ".gif":
        return write_gif(path, a, fps)
    with VideoWriter(path, fps, quality) as w:
        for f in a:
            w.write(f)
    return path


class VideoWriter:
    """Write a video a frame at a time (what :func:`write_video` writes, without the whole video in memory).

    ``write(frame)`` takes ``(H, W, 3)`` RGB or ``(H, W)`` / ``(H, W, 1)`` gray, uint8 or float in [0, 1] (judged per
    frame); the first frame sets the size, every later one must have it. The file appears, atomically, at
    :meth:`close` (or the end of a ``with`` block); an exception inside the block, or no frame written, leaves no file
    (and no temporary one). A ``.gif`` keeps its frames in memory until close (Pillow writes GIFs whole).

    Example:
        >>> import tempfile, os, numpy as np
        >>> p = os.path.join(tempfile.mkdtemp(), "w.mp4")
        >>> with VideoWriter(p, fps=25) as w:
        ...     for i in range(3):
        ...         w.write(np.full((16, 16, 3), 60 * i, np.uint8))
        >>> (w.frames, video_info(p).frames)
        (3, 3)
    """

    def __init__(self, path: str | os.PathLike, fps: float = 10.0, quality: int = 18):
        self.path = Path(path)
        self.ext = _check_write_ext(self.path)
        if not fps > 0:
            raise DataError(f"video {self.path}: expected fps > 0 to write, got {fps}")
        self.fps, self.quality = float(fps), int(quality)
        self.frames = 0  # frames written so far
        self._shape: tuple[int, ...] | None = None
        self._gif: list[np.ndarray] = []
        self._atomic = self._container = self._stream = None
        self._closed = False

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort(exc_type, exc, tb)

    def _frame(self, frame) -> np.ndarray:
        a = np.asarray(frame)
        if a.ndim == 2:
            a = a[..., None]
        if a.ndim != 3 or a.shape[-1] not in (1, 3) or a.shape[0] == 0 or a.shape[1] == 0:
            raise DataError(f"video {self.path}: expected a frame (H, W, 1|3) to write, got shape {tuple(a.shape)}")
        if self._shape is not None and a.shape[:2] != self._shape:
            raise DataError(f"video {self.path}: expected every frame {self._shape[1]}x{self._shape[0]} like the first, "
                            f"got {a.shape[1]}x{a.shape[0]} (frame {self.frames})")
        if a.dtype != np.uint8:
            a = np.clip(a.astype(np.float32) * (255.0 if a.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
        return np.repeat(a, 3, axis=-1) if a.shape[-1] == 1 else a

    def _start(self, h: int, w: int) -> None:
        import av
        from fractions import Fraction

        codec, options = {".mp4": ("libx264", {"crf": str(self.quality), "preset": "fast"}),
                          ".mkv": ("libx264", {"crf": str(self.quality), "preset": "fast"}),
                          ".avi": ("mpeg4", {"qscale": "2"}),
                          ".webm": ("libvpx-vp9", {"crf": str(self.quality + 12), "b": "0", "deadline": "realtime", "cpu-used": "8"})}[self.ext]
        self._atomic = atomic_path(self.path)
        tmp = self._atomic.__enter__()
        try:
            self._container = av.open(str(tmp), "w", format={".mp4": "mp4", ".mkv": "matroska", ".avi": "avi", ".webm": "webm"}[self.ext])
            s = self._container.add_stream(codec, rate=Fraction(self.fps).limit_denominator(1001), options=options)
            s.width, s.height, s.pix_fmt = w + w % 2, h + h % 2, "yuv420p"
            if self.ext == ".avi":
                s.codec_context.qmin = s.codec_context.qmax = 2  # near-lossless MPEG-4 part 2
            self._stream = s
        except BaseException as e:
            self._abort(type(e), e, e.__traceback__)
            raise

    def write(self, frame: np.ndarray) -> None:
        """Append one frame."""
        import av

        if self._closed:
            raise DataError(f"video {self.path}: expected an open writer, got one already closed")
        a = self._frame(frame)
        h, w = a.shape[:2]
        if self._shape is None:
            self._shape = (h, w)
            if self.ext != ".gif":
                self._start(h, w)
        if self.ext == ".gif":
            self._gif.append(a)
        else:
            if h % 2 or w % 2:  # H.264 / VP9 4:2:0 need even sizes: replicate the last row / column
                a = np.pad(a, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")
            for packet in self._stream.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="rgb24")):
                self._container.mux(packet)
        self.frames += 1

    def close(self) -> Path:
        """Flush the encoder and put the file in place (a second call does nothing). No frame written: a DataError."""
        if self._closed:
            return self.path
        self._closed = True
        if not self.frames:
            raise DataError(f"video {self.path}: expected at least one frame to write, got none")
        if self.ext == ".gif":
            write_gif(self.path, np.stack(self._gif), self.fps)
            self._gif = []
            return self.path
        try:
            for packet in self._stream.encode():
                self._container.mux(packet)
            self._container.close()
        except BaseException as e:
            self._abort(type(e), e, e.__traceback__)
            raise
        self._container = None
        atomic, self._atomic = self._atomic, None
        atomic.__exit__(None, None, None)  # fsync and rename into place
        return self.path

    def _abort(self, exc_type, exc, tb) -> None:
        """Drop what was written (the temporary file included)."""
        self._closed, self._gif = True, []
        if self._container is not None:
            try:
                self._container.close()
            except Exception:
                pass
            self._container = None
        if self._atomic is not None:
            atomic, self._atomic = self._atomic, None
            try:
                atomic.__exit__(exc_type, exc, tb)  # removes the temporary file
            except BaseException:
                pass  # the caller's exception is the one to see


def write_gif(path: str | os.PathLike, frames: np.ndarray | Iterable[np.ndarray], fps: float = 10.0) -> Path:
    """An animated GIF that loops (Pillow's adaptive palette per frame). Atomic."""
    from PIL import Image

    a = _frames_array(frames)
    ims = [Image.fromarray(f) for f in a]
    path = Path(path)
    with atomic_path(path) as tmp:
        ims[0].save(tmp, format="GIF", save_all=True, append_images=ims[1:], duration=max(20, round(1000 / max(fps, 1e-3))), loop=0)
    return path
