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


def test_a_strided_clip_gets_the_flow_between_its_sampled_frames():
    from vislab.data.video.source import load_video_splits
    from vislab.data.video.stream import VideoStream
    from vislab.tasks.video.config import VideoDataConfig

    src = load_video_splits(VideoDataConfig(data="moving", n_videos=8, clip_len=4, frame_stride=2, val_split=0, test_split=0)).train
    s = VideoStream(src, 8, train=False, clip_len=4, stride=2, mean=(0.5,) * 3, std=(0.25,) * 3, flow="gt", flow_scale=1.0)
    b = next(iter(s.epoch(0)))
    steps = src.gt_flow[0].astype(np.float32)  # (7, 2, H, W): frame k -> k + 1
    want = np.stack([steps[0:2].sum(0), steps[2:4].sum(0), steps[4:6].sum(0)])  # frames 0 -> 2 -> 4 -> 6
    assert b.flow.shape == (8, 2, 3, 32, 32)
    np.testing.assert_allclose(b.flow[0].permute(1, 0, 2, 3).numpy(), want, atol=1e-2)


def test_a_damaged_video_gives_its_last_decodable_frame_with_a_warning(tmp_path):
    from vislab.data.video.io import read_video, video_info

    path = write_video(tmp_path / "a.avi", np.repeat(_translating(40, 32), 3, -1), fps=10)
    data = path.read_bytes()
    (tmp_path / "cut.avi").write_bytes(data[: len(data) // 2])
    cut = tmp_path / "cut.avi"
    n, ok = video_info(cut).frames, len(read_video(cut))
    if n <= ok:
        pytest.skip(f"this FFmpeg counts {n} frames in the cut file and decodes {ok}: no mismatch to test")
    src = VideoSource("t", ["a", "b"], np.array([0]), ["a"], (32, 32), 1, paths=[str(cut)], cache=VideoCache(None))
    with pytest.warns(UserWarning, match=f"its container says {n} frames, {ok} decode"):
        clip = src.clip(0, np.array([0, n - 1]))
    assert clip.shape == (2, 32, 32, 1) and np.array_equal(clip[1], read_video(cut, size=(32, 32), gray=True)[-1])
