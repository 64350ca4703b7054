"""Video datasets as the training run sees them: a :class:`VideoSource` per split (videos with labels, decoded on
demand through the disk cache, or generated clips in memory) and :func:`load_video_splits` (any ``--data``).

Example:
    >>> from vislab.tasks.video.config import VideoDataConfig
    >>> s = load_video_splits(VideoDataConfig(data="moving-lr", n_videos=40))
    >>> s.train.classes, s.train.frames(0).shape, len(s.train) + len(s.val) + len(s.test)
    (['left', 'right'], (8, 32, 32, 3), 40)
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from vislab.core.errors import DataError
from vislab.data.video.cache import VideoCache, default_cache_dir, source_signature


class VideoSource:
    """One split: ``len(src)`` videos, each with a label, ``frames(i) -> (T, H, W, C)`` uint8 at the split's size and
    ``flow(i, method) -> (T-1, 2, H, W)`` float16 (computed once, cached).

    Either ``clips`` (generated, in memory: ``(N, T, H, W, C)``) or ``paths`` (video files / frame folders) is given.
    """

    def __init__(self, name: str, classes: list[str], labels: np.ndarray, video_ids: list[str], size: tuple[int, int], channels: int,
                 *, paths: list[str] | None = None, clips: np.ndarray | None = None, gt_flow: np.ndarray | None = None,
                 frame_labels: np.ndarray | None = None, groups: list[str] | None = None, cache: VideoCache | None = None,
                 raft_weights: str = ""):
        if (paths is None) == (clips is None):
            raise ValueError("VideoSource: expected paths or clips")
        self.name, self.classes, self.labels, self.video_ids = name, list(classes), np.asarray(labels, dtype=np.int64), list(video_ids)
        self.size, self.channels = (int(size[0]), int(size[1])), int(channels)
        self.paths, self.clips, self.gt_flow, self.frame_labels = paths, clips, gt_flow, frame_labels
        self.groups = groups or [""] * len(self.labels)
        self.cache = cache if cache is not None else VideoCache(None)
        self.raft_weights = raft_weights
        self._lengths: dict[int, int] = {}
        self._short: set[int] = set()  # damaged videos already warned about
        self._flows: dict[tuple[int, str], np.ndarray] = {}  # generated clips' flow, computed once per process

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def in_memory(self) -> bool:
        return self.clips is not None

    def frames(self, i: int) -> np.ndarray:
        """Video ``i``'s frames ``(T, H, W, C)`` uint8 (a memory map when cached on disk)."""
        if self.clips is not None:
            return self.clips[i]
        return self.cache.frames(self.paths[i], self.size, self.channels == 1)  # type: ignore[index]

    def clip(self, i: int, indices: np.ndarray) -> np.ndarray:
        """Frames ``indices`` of video ``i``: ``(len(indices), H, W, C)`` uint8 (without a cache folder only those are
        decoded). Indices are chosen from :meth:`n_frames`, the container's count, which stays fixed; a damaged file that
        decodes fewer frames gives its last decodable frame for the missing ones (and a warning, once)."""
        if self.clips is not None:
            return self.clips[i][indices]
        path = self.paths[i]  # type: ignore[index]
        try:
            return self.cache.clip(path, indices, self.size, self.channels == 1)
        except DataError as e:
            if "expected frame" not in str(e):
                raise
        from vislab.data.video.io import read_video

        a = self.cache.frames(path, self.size, self.channels == 1) if self.cache.root is not None else read_video(path, self.size, self.channels == 1)
        if i not in self._short:
            import warnings

            self._short.add(i)
            warnings.warn(f"video {path}: its container says {self.n_frames(i)} frames, {len(a)} decode; using the last for the rest", stacklevel=2)
        return np.asarray(a[np.minimum(np.asarray(indices), len(a) - 1)])

    def n_frames(self, i: int) -> int:
        """Frame count without decoding (the container's, or the frame folder's files)."""
        if self.clips is not None:
            return int(self.clips.shape[1])
        if i not in self._lengths:
            from vislab.data.video.io import video_info

            self._lengths[i] = video_info(self.paths[i]).frames  # type: ignore[index]
        return self._lengths[i]

    def clip_flow(self, i: int, indices: np.ndarray, method: str) -> np.ndarray:
        """The flow between the sampled frames ``indices`` of video ``i`` (:func:`~vislab.data.video.flow.clip_flow`):
        ``(len(indices) - 1, 2, H, W)`` float32. With a cache folder (or generated clips) from the whole video's flow,
        computed once; without one from the frames the clip spans only."""
        from vislab.data.video.flow import clip_flow, video_flow

        idx = np.asarray(indices)
        if self.clips is not None or method == "gt" or self.cache.root is not None:
            return clip_flow(self.flow(i, method), idx)
        lo, hi = int(idx.min()), int(idx.max())
        if hi == lo:
            return np.zeros((len(idx) - 1, 2, *self.size), np.float32)
        return clip_flow(video_flow(self.clip(i, np.arange(lo, hi + 1)), method, self.raft_weights), idx - lo)

    def flow(self, i: int, method: str) -> np.ndarray:
        """Flow between consecutive frames of video ``i``: ``(T-1, 2, H, W)`` float16 (``gt``: the generator's)."""
        if method == "gt":
            if self.gt_flow is None:
                raise DataError(f"--flow gt: expected generated data with its true flow, got {self.name}")
            return self.gt_flow[i]
        from vislab.data.video.flow import video_flow

        if self.clips is not None:  # generated clips: computed once per process, kept in memory
            key = (i, method)
            if key not in self._flows:
                self._flows[key] = video_flow(self.clips[i], method, self.raft_weights)
            return self._flows[key]
        src = self.paths[i]  # type: ignore[index]
        return self.cache.array(("flow", *source_signature(src), self.size, self.channels == 1, method, self.raft_weights),
                                lambda: video_flow(self.frames(i), method, self.raft_weights))

    def path(self, i: int) -> str:
        return self.paths[i] if self.paths is not None else f"{self.name}:{self.video_ids[i]}"

    def subset(self, idx: np.ndarray | list[int]) -> VideoSource:
        idx = np.asarray(idx, dtype=np.int64)
        pick = lambda a: None if a is None else a[idx]  # noqa: E731
        return VideoSource(self.name, self.classes, self.labels[idx], [self.video_ids[i] for i in idx], self.size, self.channels,
                           paths=[self.paths[i] for i in idx] if self.paths is not None else None, clips=pick(self.clips),
                           gt_flow=pick(self.gt_flow), frame_labels=pick(self.frame_labels), groups=[self.groups[i] for i in idx],
                           cache=self.cache, raft_weights=self.raft_weights)

    def stats(self, max_videos: int = 32) -> tuple[tuple[float, ...], tuple[float, ...]]:
        """Per-channel mean and std (0..1) of the middle frames of up to ``max_videos`` evenly spaced videos."""
        import torch

        from vislab.data.base import image_stats

        def middle(i: int) -> torch.Tensor:  # (C, H, W) uint8; the whole video is decoded (and cached), so a broken one
            f = self.frames(i)  # (a frame folder of mixed sizes, say) stops the run here, before the first epoch
            return torch.from_numpy(np.array(f[len(f) // 2])).permute(2, 0, 1)

        return image_stats(None, n=len(self), get=middle, max_images=max_videos, max_decoded=max_videos)

    def check_lengths(self, need: int, pad: str, what: str) -> None:
        """Every video has at least ``need`` frames (one clip), unless ``pad`` says how to fill short ones (``what``: the
        options that ask for them, for the error)."""
        from vislab.data.video.sampling import fit_length

        for i in range(len(self)):
            fit_length(self.n_frames(i), need, f"video {self.path(i)}", pad, what)


def check_cache_room(sources: list[VideoSource | None], flow: bool, explicit: bool) -> str:
    """The disk the cache will take (decoded frames, and flow when ``flow``) against the free space where it lives.
    Returns a log line; with too little room an automatic cache is switched off (decoding every epoch instead) and an
    explicit ``--cache DIR`` is an error. Call after the frame counts are known (``check_lengths``)."""
    import shutil

    srcs = [s for s in sources if s is not None and s.paths is not None]
    if not srcs or srcs[0].cache.root is None:
        return ""
    cache = srcs[0].cache
    frames = sum(s.n_frames(i) for s in srcs for i in range(len(s)))
    h, w = srcs[0].size
    need = frames * h * w * (srcs[0].channels + (4 if flow else 0))  # uint8 frames (+ float16 (dx, dy) flow)
    root = cache.root
    probe = next((p for p in (root, *root.parents) if p.exists()), Path("/"))
    free = shutil.disk_usage(probe).free
    have = sum(f.stat().st_size for f in root.glob("*.npy")) if root.exists() else 0
    line = f"cache {root}: about {need / 1e9:.2f} GB for {frames} frames at {h}x{w} ({have / 1e9:.2f} GB there, {free / 1e9:.1f} GB free)"
    if need - have > 0.9 * free:
        if explicit:
            raise DataError(f"--cache {root}: expected room for about {need / 1e9:.1f} GB of decoded frames, got {free / 1e9:.1f} GB free "
                            f"(use a smaller --img-size, --channels 1, another --cache folder or --cache none)")
        for s in srcs:
            s.cache = VideoCache(None)
        return line + ": too little room, decoding every epoch instead (--cache DIR elsewhere to cache)"
    return line


@dataclass
class VideoSplits:
    train: VideoSource
    val: VideoSource | None
    test: VideoSource | None
    layout: str = ""

    def get(self, split: str) -> VideoSource:
        s = getattr(self, split)
        if s is None or not len(s):
            raise DataError(f"--split {split}: expected a {split} split, got none in {self.train.name}")
        return s


def resolve_data(cfg: Any) -> tuple[tuple[int, int], int, str]:
    """``(size, channels, layout)`` for a data config: the defaults that depend on the dataset."""
    from vislab.data.video.synthetic import PRESETS

    generated = cfg.data in PRESETS
    layout = "generated" if generated else ""
    if not generated:
        from vislab.core.errors import did_you_mean
        from vislab.data.video.formats import is_kth

        if not Path(cfg.data).exists():
            raise DataError(f"--data: expected a generated dataset ({', '.join(PRESETS)}) or a folder of videos, got '{cfg.data}' "
                            f"(no such path){did_you_mean(cfg.data, PRESETS)}")

        layout = "kth" if Path(cfg.data).is_dir() and is_kth(cfg.data) else "files"
    side = cfg.img_size or (32 if generated else 112)
    channels = cfg.channels or (1 if layout == "kth" else 3)
    if channels not in (1, 3):
        raise DataError(f"--channels: expected 1 or 3, got {channels}")
    return (side, side), channels, layout


def _cache(cfg: Any) -> VideoCache:
    if cfg.cache == "none":
        return VideoCache(None)
    return VideoCache(default_cache_dir() if cfg.cache == "auto" else Path(cfg.cache))


def load_video_splits(cfg: Any) -> VideoSplits:
    """Train / val / test :class:`VideoSource` s of ``cfg`` (a :class:`~vislab.tasks.video.config.VideoDataConfig`)."""
    from vislab.data.video.formats import group_split, list_videos
    from vislab.data.video.synthetic import make_moving

    size, channels, layout = resolve_data(cfg)
    if layout == "generated":
        n = cfg.n_videos
        mv = make_moving(n, classes=cfg.data, frames=max(cfg.clip_len * cfg.frame_stride, 2), size=size[0], channels=channels,
                         seed=cfg.split_seed)
        ids = [f"{mv.classes[y]}_{i:04d}" for i, y in enumerate(mv.labels)]
        full = VideoSource(cfg.data, mv.classes, mv.labels, ids, size, channels, clips=mv.clips, gt_flow=mv.flow.astype(np.float16),
                           frame_labels=mv.frame_labels, raft_weights=cfg.raft_weights)
        n_test, n_val = round(n * cfg.test_split), round(n * cfg.val_split)
        if n - n_test - n_val < len(mv.classes):
            raise DataError(f"--n-videos: expected enough generated clips for {len(mv.classes)} classes after the val / test splits, got {n}")
        order = np.arange(n)  # the generator shuffles the classes: contiguous ranges are random splits
        return VideoSplits(full.subset(order[: n - n_test - n_val]), full.subset(order[n - n_test - n_val : n - n_test]) if n_val else None,
                           full.subset(order[n - n_test :]) if n_test else None, "generated")
    listing = list_videos(cfg.data, fold=cfg.fold)
    cache = _cache(cfg)

    def source(items: list[Any]) -> VideoSource:
        return VideoSource(Path(cfg.data).name, listing.classes, np.array([it.label for it in items], dtype=np.int64),
                           [it.video_id for it in items], size, channels, paths=[it.path for it in items],
                           groups=[it.group for it in items], cache=cache, raft_weights=cfg.raft_weights)

    train, val, test = listing.train, listing.val, listing.test
    if test is None and cfg.test_split > 0:
        train, test = group_split(train, cfg.test_split, cfg.split_seed)
    if val is None and cfg.val_split > 0:
        train, val = group_split(train, cfg.val_split, cfg.split_seed + 1)
    if not train:
        raise DataError(f"dataset {cfg.data}: expected training videos, got none after the splits")
    return VideoSplits(source(train), source(val) if val else None, source(test) if test else None, listing.layout)


def with_data(cfg: Any, data: str) -> Any:
    """``cfg`` with another dataset (an eval on other videos)."""
    return dataclasses.replace(cfg, data=data)
