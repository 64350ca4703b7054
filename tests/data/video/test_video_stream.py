"""Clips by the global-batch rule: decoding threads change nothing, two processes' shares make one process's batch,
and the clip a video gives depends only on (seed, epoch, video)."""

from __future__ import annotations

import torch

from vislab.data.video.source import load_video_splits
from vislab.data.video.stream import VideoStream
from vislab.data.video.synthetic import write_moving
from vislab.tasks.video.config import VideoDataConfig

NORM = {"mean": (0.5,) * 3, "std": (0.25,) * 3}


def test_threads_and_processes_read_the_same_clips(tmp_path):
    data = write_moving(tmp_path / "v", n=12, frames=10, size=32, seed=2)
    src = load_video_splits(VideoDataConfig(data=str(data), img_size=32, cache="none", val_split=0, test_split=0)).train
    kw = dict(train=True, clip_len=4, augment="light", seed=7, **NORM)
    one = list(VideoStream(src, 6, workers=0, **kw).epoch(3))
    threads = list(VideoStream(src, 6, workers=2, **kw).epoch(3))
    r0 = list(VideoStream(src, 6, rank=0, world=2, **kw).epoch(3))
    r1 = list(VideoStream(src, 6, rank=1, world=2, **kw).epoch(3))
    assert len(one) == 2 and all(b.n_global == 6 for b in one)
    for a, t, p, q in zip(one, threads, r0, r1, strict=True):
        assert torch.equal(a.x, t.x) and torch.equal(a.y, t.y)
        assert torch.equal(a.x[0::2], p.x) and torch.equal(a.x[1::2], q.x)  # batch[rank::world]
    again = list(VideoStream(src, 6, workers=0, **kw).epoch(3))
    other = list(VideoStream(src, 6, workers=0, **kw).epoch(4))
    assert all(torch.equal(a.x, b.x) for a, b in zip(one, again, strict=True))  # the same epoch: the same clips
    clips = lambda bs: {(int(v), int(s)) for b in bs for v, s in zip(b.index, b.starts, strict=True)}  # noqa: E731
    assert clips(one) != clips(other)  # another epoch: other videos per batch and other start frames
