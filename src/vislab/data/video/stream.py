"""Batches of clips by the shared global-batch rule (:mod:`vislab.data.base`).

Training: one clip per video per epoch, its frames chosen by ``--sampling`` with a generator seeded by
``(seed, epoch, video)`` -- so the clip a video gives does not depend on the process that reads it, and a resumed
run reads the same clips. Evaluation: ``eval_clips`` clips per video spread evenly over it, in order; every batch
carries the videos' indices so the metrics can average clip scores per video.

A batch's ``x`` is ``(b, C, T, H, W)`` normalised float, ``y`` the clip labels, ``yf`` per-frame labels
``(b, T)`` (the clip label on every frame unless the data has its own), ``flow`` ``(b, 2, T-1, H, W)`` (two-stream
models only) divided by ``flow_scale``.

Example:
    >>> from vislab.tasks.video.config import VideoDataConfig
    >>> from vislab.data.video.source import load_video_splits
    >>> src = load_video_splits(VideoDataConfig(data="moving", n_videos=40)).train
    >>> s = VideoStream(src, 4, train=True, clip_len=8, mean=(0.5,) * 3, std=(0.25,) * 3)
    >>> b = next(iter(s.epoch(0))); tuple(b.x.shape), b.n_global
    ((4, 3, 8, 32, 32), 4)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from vislab.data.base import BatchAugment, epoch_generator, global_batches, train_batch_size
from vislab.data.video.sampling import dense, sample
from vislab.data.video.source import VideoSource


@dataclass
class VideoBatch:
    x: torch.Tensor  # (b, C, T, H, W)
    y: torch.Tensor  # (b,)
    yf: torch.Tensor  # (b, T)
    index: torch.Tensor  # (b,) video index in the split
    n_global: int
    flow: torch.Tensor | None = None  # (b, 2, T-1, H, W)
    starts: torch.Tensor | None = None  # (b,) first frame of each clip

    def __len__(self) -> int:
        return len(self.y)


class VideoStream:
    """Clips of a :class:`VideoSource` (see the module docstring)."""

    def __init__(self, src: VideoSource, batch_size: int, *, train: bool, clip_len: int, stride: int = 1, sampling: str = "dense",
                 eval_clips: int = 1, pad: str = "error", mean: Sequence[float], std: Sequence[float], device: torch.device | str = "cpu",
                 rank: int = 0, world: int = 1, seed: int = 0, augment: str = "none", flow: str | None = None, flow_scale: float = 4.0,
                 workers: int = 0):
        self.src, self.train, self.clip_len, self.stride, self.sampling = src, train, clip_len, stride, sampling
        self.eval_clips, self.pad = max(1, eval_clips) if not train else 1, pad
        self.batch_size = train_batch_size(batch_size, len(src), world) if train else batch_size
        self.mean = torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.std = torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1, 1)
        self.device, self.rank, self.world, self.seed = torch.device(device), rank, world, seed
        self.augment = BatchAugment("light", src.size) if train and augment == "light" else None
        self.flow, self.flow_scale = flow, flow_scale
        self.workers = workers
        # evaluation entries: (video, clip) pairs; training: one entry per video
        self.entries = [(v, k) for v in range(len(src)) for k in range(self.eval_clips)]

    def __len__(self) -> int:
        n = len(self.entries)
        return n // self.batch_size if self.train else -(-n // self.batch_size)

    def indices(self, v: int, k: int, epoch: int) -> np.ndarray:
        """Frame indices of entry ``(v, k)``: ``(clip_len,)``."""
        n = self.src.n_frames(v)
        if self.train:
            g = np.random.default_rng([self.seed, epoch, v])
            return sample(self.sampling if self.sampling != "dense" else "random", n, self.clip_len, self.stride, 1, g, pad=self.pad)[0]
        if self.sampling == "dense":
            return dense(n, self.clip_len, self.stride, self.eval_clips, pad=self.pad)[k]
        return sample(self.sampling, n, self.clip_len, self.stride, self.eval_clips, None, pad=self.pad)[k]

    def _load(self, entry: tuple[int, int], epoch: int) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
        v, k = entry
        idx = self.indices(v, k, epoch)
        clip = np.asarray(self.src.clip(v, idx))  # (T, H, W, C)
        flow = self.src.clip_flow(v, idx, self.flow) if self.flow else None  # (T-1, 2, H, W): sampled frame to sampled frame
        return clip, flow, idx

    def epoch(self, epoch: int) -> Iterator[VideoBatch]:
        # decoding threads for this epoch only (PyAV and OpenCV release the GIL): shut down when the epoch ends
        with ThreadPoolExecutor(self.workers) if self.workers > 0 else contextlib.nullcontext() as pool:
            yield from self._batches(epoch, pool)

    def _batches(self, epoch: int, pool: ThreadPoolExecutor | None) -> Iterator[VideoBatch]:
        for b, chunk in enumerate(global_batches(len(self.entries), self.batch_size, self.train, self.seed, epoch)):
            local = chunk[self.rank :: self.world].tolist()
            entries = [self.entries[i] for i in local]
            loaded = list(pool.map(lambda e: self._load(e, epoch), entries)) if pool else [self._load(e, epoch) for e in entries]
            vids = torch.tensor([e[0] for e in entries], dtype=torch.long)
            if loaded:
                x = torch.from_numpy(np.stack([c for c, _, _ in loaded])).permute(0, 4, 1, 2, 3).float().div_(255)  # (b, C, T, H, W)
            else:
                x = torch.zeros((0, self.src.channels, self.clip_len, *self.src.size))
            x = (x - self.mean) / self.std
            flow = None
            if self.flow:
                flow = torch.from_numpy(np.stack([f for _, f, _ in loaded])).permute(0, 2, 1, 3, 4) / self.flow_scale if loaded else \
                    torch.zeros((0, 2, self.clip_len - 1, *self.src.size))  # (b, 2, T-1, H, W)
            if self.augment is not None and self.augment.active and len(local):
                g = epoch_generator(self.seed, epoch, salt=1 + b)
                flips, dy, dx = (p[self.rank :: self.world] for p in self.augment.params(len(chunk), g))
                bsz, c, t, h, w = x.shape
                x = self.augment(x.reshape(bsz, c * t, h, w), flips, dy, dx).reshape(bsz, c, t, h, w)
                if flow is not None:
                    flow = self.augment(flow.reshape(bsz, 2 * (t - 1), h, w), flips, dy, dx).reshape(bsz, 2, t - 1, h, w)
            y = torch.from_numpy(self.src.labels[vids.numpy()]) if len(vids) else torch.zeros(0, dtype=torch.long)
            if self.src.frame_labels is not None and len(vids):
                fl = self.src.frame_labels[vids.numpy()]  # (b, F)
                yf = torch.from_numpy(np.stack([fl[j, np.minimum(idx, fl.shape[1] - 1)] for j, (_, _, idx) in enumerate(loaded)]))
            else:
                yf = y[:, None].expand(-1, self.clip_len).clone()
            starts = torch.tensor([int(i[0]) for _, _, i in loaded], dtype=torch.long)
            dev = self.device
            yield VideoBatch(x.to(dev), y.to(dev), yf.to(dev), vids.to(dev), len(chunk), flow.to(dev) if flow is not None else None, starts)
