"""Which frames of a video make a clip: dense, uniform, TSN and random-crop sampling.

Every function returns an int64 array ``(n_clips, clip_len)`` of frame indices in ``[0, n_frames)``; decoding is
someone else's job (``read_video(path, indices=...)`` or a cached array sliced with them).

* **dense**: ``clip_len`` frames ``stride`` apart. Evaluation spreads ``n_clips`` clips evenly (the first starts at
  frame 0, the last ends at the last frame; one clip is centred); training takes one at a random start
  (:func:`random_crop`).
* **uniform**: ``clip_len`` frames spread evenly over the whole video (the middle of ``clip_len`` equal parts);
  several clips are copies shifted evenly within one spacing.
* **tsn** (Temporal Segment Networks): the video cut into ``clip_len`` equal segments, one frame from each: a
  random one when training, the middle one otherwise.

**Short videos.** A clip needs :func:`span` frames (dense / random) or ``clip_len`` frames (uniform / tsn). With
``pad="error"`` a shorter video is a :class:`~vislab.core.errors.DataError`; with ``"loop"`` or ``"repeat"`` the
indices are computed on a video of the needed length and then mapped back: ``loop`` wraps around (``i % n``),
``repeat`` holds the last frame (``min(i, n - 1)``).

Example:
    >>> dense(100, 4, stride=2, n_clips=2).tolist()
    [[0, 2, 4, 6], [93, 95, 97, 99]]
    >>> uniform(100, 4).tolist()
    [[12, 37, 62, 87]]
    >>> tsn(10, 5).tolist()
    [[1, 3, 5, 7, 9]]
    >>> sample("dense", 5, 8, pad="loop").tolist()
    [[0, 1, 2, 3, 4, 0, 1, 2]]
    >>> sample("dense", 5, 8, pad="repeat").tolist()
    [[0, 1, 2, 3, 4, 4, 4, 4]]
"""

from __future__ import annotations

import numpy as np

from vislab.core.errors import DataError

SAMPLING = ("dense", "uniform", "tsn", "random")
PADS = ("error", "loop", "repeat")


def span(clip_len: int, stride: int = 1) -> int:
    """Frames one clip of ``clip_len`` frames ``stride`` apart covers, first to last.

    Example:
        >>> span(16, 1), span(8, 4)
        (16, 29)
    """
    return (clip_len - 1) * stride + 1


def fit_length(n_frames: int, need: int, what: str = "video", pad: str = "error", reason: str = "") -> int:
    """The length to sample indices from: ``n_frames`` when the video has the ``need`` frames, else ``need`` (the
    indices past the end are then mapped back with :func:`pad_indices`); ``pad="error"`` raises instead.

    Args:
        what: names the video in the error (``"video runs/a.mp4"``).
        reason: what needs that many frames, for the error (``"--clip-len 16 --frame-stride 1"``).

    Example:
        >>> fit_length(20, 16), fit_length(9, 16, pad="loop")
        (20, 16)
        >>> fit_length(9, 16, "video a.mp4", reason="--clip-len 16 --frame-stride 1")
        Traceback (most recent call last):
        ...
        vislab.core.errors.DataError: video a.mp4: expected at least 16 frames for --clip-len 16 --frame-stride 1, got 9 (use --pad loop or --pad repeat)
    """
    if pad not in PADS:
        raise DataError(f"{what}: expected --pad one of {', '.join(PADS)}, got '{pad}'")
    if n_frames < 1:
        raise DataError(f"{what}: expected at least 1 frame, got {n_frames}")
    if n_frames >= need:
        return n_frames
    if pad == "error":
        why = f" for {reason}" if reason else ""
        raise DataError(f"{what}: expected at least {need} frames{why}, got {n_frames} (use --pad loop or --pad repeat)")
    return need


def pad_indices(indices: np.ndarray, n_frames: int, pad: str = "error") -> np.ndarray:
    """Indices mapped into ``[0, n_frames)``: ``loop`` -> ``i % n``, ``repeat`` -> ``min(i, n - 1)`` (``error``:
    unchanged; they are in range already).

    Example:
        >>> pad_indices(np.arange(7), 5, "loop").tolist(), pad_indices(np.arange(7), 5, "repeat").tolist()
        ([0, 1, 2, 3, 4, 0, 1], [0, 1, 2, 3, 4, 4, 4])
    """
    indices = np.asarray(indices, dtype=np.int64)
    if pad == "loop":
        return indices % n_frames
    if pad == "repeat":
        return np.minimum(indices, n_frames - 1)
    return indices


def _check(clip_len: int, stride: int = 1, n_clips: int = 1) -> None:
    for name, v in (("--clip-len", clip_len), ("--frame-stride", stride), ("clips per video", n_clips)):
        if int(v) < 1:
            raise DataError(f"sampling: expected {name} >= 1, got {v}")


def dense(n_frames: int, clip_len: int, stride: int = 1, n_clips: int = 1, pad: str = "error", what: str = "video") -> np.ndarray:
    """``n_clips`` clips of ``clip_len`` frames ``stride`` apart, their starts spread evenly: the first clip at frame
    0, the last ending at the last frame; a single clip is centred. Deterministic (evaluation).

    Example:
        >>> dense(10, 4).tolist()
        [[3, 4, 5, 6]]
        >>> dense(10, 4, n_clips=3).tolist()
        [[0, 1, 2, 3], [3, 4, 5, 6], [6, 7, 8, 9]]
    """
    _check(clip_len, stride, n_clips)
    need = span(clip_len, stride)
    length = fit_length(n_frames, need, what, pad, f"--clip-len {clip_len} --frame-stride {stride}")
    last_start = length - need
    if n_clips == 1:
        starts = np.array([last_start // 2], dtype=np.int64)
    else:
        starts = np.round(np.linspace(0, last_start, n_clips)).astype(np.int64)
    idx = starts[:, None] + np.arange(clip_len, dtype=np.int64)[None, :] * stride
    return pad_indices(idx, n_frames, pad)


def uniform(n_frames: int, clip_len: int, n_clips: int = 1, pad: str = "error", what: str = "video") -> np.ndarray:
    """``clip_len`` frames spread evenly over the whole video: the video cut into ``clip_len`` equal parts of
    ``n_frames / clip_len`` frames and the middle of each taken. ``n_clips > 1``: shifted copies, the offsets
    spread evenly within one part (clip ``c`` at ``(c + 0.5) / n_clips`` of it).

    Example:
        >>> uniform(8, 4).tolist()
        [[1, 3, 5, 7]]
        >>> uniform(8, 4, n_clips=2).tolist()
        [[0, 2, 4, 6], [1, 3, 5, 7]]
    """
    _check(clip_len, 1, n_clips)
    length = fit_length(n_frames, clip_len, what, pad, f"--clip-len {clip_len}")
    step = length / clip_len
    offsets = (np.arange(n_clips) + 0.5) / n_clips  # (n_clips,) in (0, 1)
    pos = (np.arange(clip_len)[None, :] + offsets[:, None]) * step
    idx = np.minimum(np.floor(pos).astype(np.int64), length - 1)  # floor < length already; guard float round-off
    return pad_indices(idx, n_frames, pad)


def _segment_bounds(length: int, segments: int) -> np.ndarray:
    """``segments + 1`` integer bounds: segment ``k`` is frames ``[b[k], b[k + 1])``, none empty when
    ``length >= segments``."""
    return (np.arange(segments + 1, dtype=np.int64) * length) // segments


def tsn(n_frames: int, segments: int, generator: np.random.Generator | None = None, n_clips: int = 1,
        pad: str = "error", what: str = "video") -> np.ndarray:
    """TSN sampling: the video cut into ``segments`` equal segments (integer bounds ``k * n // segments``), one frame
    from each: a random one within its segment when ``generator`` is given (training), the middle one otherwise.
    Shape ``(1, segments)``; ``n_clips > 1``: that many rows (independent draws, or offsets spread evenly within
    each segment).

    Example:
        >>> tsn(12, 3).tolist()
        [[2, 6, 10]]
        >>> idx = tsn(12, 3, np.random.default_rng(0))
        >>> bool(((idx >= [0, 4, 8]) & (idx < [4, 8, 12])).all())
        True
    """
    _check(segments, 1, n_clips)
    length = fit_length(n_frames, segments, what, pad, f"--clip-len {segments}")
    b = _segment_bounds(length, segments)
    lo, size = b[:-1], b[1:] - b[:-1]  # (segments,), every size >= 1
    if generator is not None:
        idx = lo[None, :] + np.floor(generator.random((n_clips, segments)) * size[None, :]).astype(np.int64)
        idx = np.minimum(idx, (lo + size - 1)[None, :])
    else:
        offsets = (np.arange(n_clips) + 0.5) / n_clips
        idx = lo[None, :] + np.floor(offsets[:, None] * size[None, :]).astype(np.int64)
    return pad_indices(idx, n_frames, pad)


def random_crop(n_frames: int, clip_len: int, stride: int, generator: np.random.Generator, n_clips: int = 1,
                pad: str = "error", what: str = "video") -> np.ndarray:
    """One clip of ``clip_len`` frames ``stride`` apart at a random start (training); ``n_clips > 1``: that many
    independent clips. Shape ``(n_clips, clip_len)``.

    Example:
        >>> idx = random_crop(100, 4, 3, np.random.default_rng(0))
        >>> idx.shape, bool((np.diff(idx) == 3).all()), bool(0 <= idx.min() and idx.max() < 100)
        ((1, 4), True, True)
    """
    if generator is None:
        raise DataError("random_crop: expected a numpy Generator (np.random.default_rng(seed)), got None")
    _check(clip_len, stride, n_clips)
    need = span(clip_len, stride)
    length = fit_length(n_frames, need, what, pad, f"--clip-len {clip_len} --frame-stride {stride}")
    starts = generator.integers(0, length - need + 1, size=n_clips, dtype=np.int64)
    idx = starts[:, None] + np.arange(clip_len, dtype=np.int64)[None, :] * stride
    return pad_indices(idx, n_frames, pad)


def sample(method: str, n_frames: int, clip_len: int, stride: int = 1, n_clips: int = 1,
           generator: np.random.Generator | None = None, pad: str = "error", what: str = "video") -> np.ndarray:
    """Frame indices ``(n_clips, clip_len)`` by ``method`` (one of :data:`SAMPLING`).

    A ``generator`` means training: ``dense`` then takes random crops (:func:`random_crop`), ``tsn`` a random frame
    per segment; ``random`` needs one. Without it every method is deterministic (evaluation). ``uniform`` and
    ``tsn`` ignore ``stride``.

    Example:
        >>> sample("dense", 30, 4, stride=2, n_clips=2).tolist()
        [[0, 2, 4, 6], [23, 25, 27, 29]]
        >>> a = sample("dense", 30, 4, generator=np.random.default_rng(1))
        >>> b = sample("dense", 30, 4, generator=np.random.default_rng(1))
        >>> bool((a == b).all()), a.shape
        (True, (1, 4))
    """
    if method not in SAMPLING:
        from vislab.core.errors import did_you_mean

        raise DataError(f"sampling: expected one of {', '.join(SAMPLING)}, got '{method}'{did_you_mean(method, SAMPLING)}")
    if method == "random" or (method == "dense" and generator is not None):
        if generator is None:
            raise DataError("sampling 'random': expected a generator (training only), got None; use 'dense' to evaluate")
        return random_crop(n_frames, clip_len, stride, generator, n_clips, pad, what)
    if method == "dense":
        return dense(n_frames, clip_len, stride, n_clips, pad, what)
    if method == "uniform":
        return uniform(n_frames, clip_len, n_clips, pad, what)
    return tsn(n_frames, clip_len, generator, n_clips, pad, what)


def frames_needed(clip_len: int, stride: int = 1, method: str = "dense") -> int:
    """Frames a video needs for one clip: the strided :func:`span` for dense clips, ``clip_len`` for uniform and TSN
    (spread over the whole video, they ignore the stride).

    Example:
        >>> frames_needed(16, 2), frames_needed(16, 2, "tsn")
        (31, 16)
    """
    return span(clip_len, stride) if method in ("dense", "random") else clip_len
