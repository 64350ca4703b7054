"""Flow of whole videos for two-stream models: Farneback recovers a known translation; RAFT runs from a local weights
file only (any size: small frames are upsampled for it and the flow scaled back); flow of files is cached."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vislab.core.errors import ConfigError
from vislab.data.video.cache import VideoCache
from vislab.data.video.flow import video_flow
from vislab.data.video.io import write_video
from vislab.data.video.source import VideoSource


def _translating(T: int = 4, size: int = 48, d: tuple[int, int] = (2, 1)) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(0)
    tex = cv2.GaussianBlur(rng.random((size, size)).astype(np.float32), (0, 0), 2.0)
    tex = (255 * (tex - tex.min()) / (tex.max() - tex.min())).astype(np.uint8)
    return np.stack([np.roll(tex, (t * d[1], t * d[0]), (0, 1)) for t in range(T)])[..., None]  # (T, H, W, 1)


def test_farneback_video_flow_recovers_a_translation_in_the_interior():
    f = video_flow(_translating())
    assert f.shape == (3, 2, 48, 48) and f.dtype == np.float16
    inner = f[:, :, 8:-8, 8:-8].astype(np.float32)
    epe = np.sqrt((inner[:, 0] - 2) ** 2 + (inner[:, 1] - 1) ** 2).mean()
    assert epe < 0.3, epe


def test_raft_needs_a_local_weights_file_and_never_downloads(tmp_path, monkeypatch):
    from torchvision.models.optical_flow import raft_small

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", lambda *a, **k: pytest.fail("RAFT tried to download weights"))
    frames = _translating(3, 32)
    with pytest.raises(ConfigError, match="expected --raft-weights FILE"):
        video_flow(frames, "raft", "")
    with pytest.raises(ConfigError, match="not found"):
        video_flow(frames, "raft", str(tmp_path / "none.pth"))
    torch.save({"nothing": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match="does not fit"):
        video_flow(frames, "raft", str(tmp_path / "bad.pth"))
    torch.manual_seed(0)
    torch.save(raft_small(weights=None).state_dict(), tmp_path / "raft.pth")
    f = video_flow(frames, "raft", str(tmp_path / "raft.pth"))  # random weights: the plumbing, not the accuracy
    assert f.shape == (2, 2, 32, 32) and np.isfinite(f.astype(np.float32)).all()


def test_flow_of_a_video_file_is_computed_once_and_cached(tmp_path):
    path = write_video(tmp_path / "a.mp4", np.repeat(_translating(5, 32), 3, -1), fps=10)
    cache = VideoCache(tmp_path / "cache")
    src = VideoSource("t", ["a", "b"], np.array([0]), ["a"], (32, 32), 1, paths=[str(path)], cache=cache)
    first = np.asarray(src.flow(0, "farneback"))
    misses = cache.stats()["misses"]
    again = np.asarray(src.flow(0, "farneback"))
    assert cache.stats()["misses"] == misses and cache.stats()["hits"] >= 1
    assert first.shape == (4, 2, 32, 32) and np.array_equal(first, again)


def test_a_cache_without_room_is_switched_off_or_refused(tmp_path, monkeypatch):
    import shutil
    from collections import namedtuple

    from vislab.core.errors import DataError
    from vislab.data.video.source import check_cache_room

    path = write_video(tmp_path / "a.mp4", np.repeat(_translating(5, 32), 3, -1), fps=10)
    src = lambda: VideoSource("t", ["a", "b"], np.array([0]), ["a"], (32, 32), 3, paths=[str(path)], cache=VideoCache(tmp_path / "c"))  # noqa: E731
    assert "about 0.00 GB for 5 frames at 32x32" in check_cache_room([src()], flow=False, explicit=True)
    monkeypatch.setattr(shutil, "disk_usage", lambda p: namedtuple("U", "total used free")(100, 100, 1000))  # 1 kB free
    auto = src()
    assert "too little room, decoding every epoch" in check_cache_room([auto, None], flow=True, explicit=False)
    assert auto.cache.root is None and auto.clip(0, np.array([0, 4])).shape == (2, 32, 32, 3)
    with pytest.raises(DataError, match="expected room for about"):
        check_cache_room([src()], flow=False, explicit=True)
