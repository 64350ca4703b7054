"""``vislab video flow`` end to end on generated videos of a known motion, through H.264 encoding and decoding.

The flow ops themselves (one pair of tensors, against OpenCV) are tested in tests/ops/test_ops_regions.py
(test_farneback_matches_opencv_and_recovers_shift, test_lucas_kanade_and_corners_recover_a_shift); these tests are
about the command: reading the video, the pairs, the table, the drawn video, the re-detection of corners.

The video: a smoothed random texture, periodic (smoothed with wrap-around) so that ``np.roll`` by (dx, dy) = (2, 1)
px per frame is an exact translation with no seam; only the image borders see new content. Measured: the CSV's
per-pair mean (dx, dy) is (2.00, 1.00) to 0.004 px, the end-point error in the interior 0.0003 px (mean) --
the bars below (0.3 px for the CSV mean, 0.5 px EPE) leave room for other encoders / CPUs.
"""

from __future__ import annotations

import csv
from collections import defaultdict

import numpy as np
import pytest
import torch

from vislab.core.errors import DataError
from vislab.data.video.io import read_video, write_video
from vislab.ops.flow import farneback
from vislab.tasks.video.flowviz import FlowConfig, run_flow, show_flow

DX, DY = 2, 1
H, W, T = 96, 128, 8
BORDER = 16  # the "interior": this far from every edge


def _texture(seed: int) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    tex = gaussian_filter(np.random.default_rng(seed).random((H, W)), 2.0, mode="wrap")
    return (tex - tex.min()) / (tex.max() - tex.min())


def _frames(seed: int = 0, t: int = T) -> np.ndarray:
    tex = _texture(seed)
    f = np.stack([np.roll(tex, (k * DY, k * DX), axis=(0, 1)) for k in range(t)])
    return np.repeat((f * 255).round().astype(np.uint8)[..., None], 3, -1)


@pytest.fixture(scope="module")
def moving(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("flow") / "moving.mp4", _frames(), fps=10)


def test_farneback_recovers_the_translation(moving, tmp_path):
    cfg = FlowConfig(video=str(moving), out=str(tmp_path / "f"), gif=True)
    r = run_flow(cfg)
    drawn = read_video(r["video"])
    assert drawn.shape == (T - 1, H, 2 * W, 3)  # one frame per pair: T - 1; the frame beside its flow
    assert read_video(r["gif"]).shape[0] == T - 1
    rows = list(csv.DictReader(open(r["csv"])))
    assert len(rows) == T - 1 and [int(x["frame"]) for x in rows] == list(range(T - 1))
    for row in rows:  # the mean over each whole frame: borders included, still the truth
        assert abs(float(row["mean_dx"]) - DX) < 0.3 and abs(float(row["mean_dy"]) - DY) < 0.3, row
        assert float(row["max_magnitude"]) >= float(row["mean_magnitude"]) > 0
    assert abs(r["mean_magnitude"] - np.hypot(DX, DY)) < 0.3
    # the end-point error of the dense flow of the decoded frames, in the interior
    x = torch.from_numpy(read_video(moving)).permute(0, 3, 1, 2).float() / 255
    f = farneback(x[:-1], x[1:])
    epe = ((f[:, 0] - DX) ** 2 + (f[:, 1] - DY) ** 2).sqrt()[:, BORDER:-BORDER, BORDER:-BORDER]
    assert epe.mean() < 0.5, float(epe.mean())
    # the flow colours: moving right and a little down is red-orange, the same everywhere in the interior
    flow_panel = drawn[:, BORDER:-BORDER, W + BORDER : 2 * W - BORDER].reshape(-1, 3).astype(float)
    assert flow_panel[:, 0].mean() > 200 and flow_panel[:, 2].mean() < 60 and flow_panel.std(0).max() < 20
    lines = show_flow(cfg, r)
    assert "7 frame pairs" in lines[0] and "(+2.00" in lines[0] and lines[-1].endswith("flow.mp4, flow_magnitude.csv, flow.gif")


def test_size_and_max_frames(moving, tmp_path):
    r = run_flow(FlowConfig(video=str(moving), out=str(tmp_path / "s"), size=64, max_frames=4))
    assert r["pairs"] == 3 and r["size"] == [48, 64]
    assert read_video(r["video"]).shape == (3, 48, 128, 3)
    assert abs(r["mean_dx"] - DX / 2) < 0.3 and abs(r["mean_dy"] - DY / 2) < 0.3  # half the size: half the motion


def _tracks(path) -> dict[int, np.ndarray]:
    by: dict[int, list] = defaultdict(list)
    for row in csv.DictReader(open(path)):
        by[int(row["track_id"])].append((int(row["frame"]), float(row["x"]), float(row["y"])))
    return {k: np.array(sorted(v)) for k, v in by.items()}


def test_lucas_kanade_tracks_follow_the_motion(moving, tmp_path):
    cfg = FlowConfig(video=str(moving), method="lk", out=str(tmp_path / "lk"), max_corners=60, trail=4)
    r = run_flow(cfg)
    assert read_video(r["video"]).shape[0] == T  # one frame per frame: the points and their trails
    tracks = _tracks(r["csv"])
    assert len(tracks) == r["tracks"] >= 60
    long = [v for v in tracks.values() if len(v) >= 2]  # (a point can leave the frame after its first one)
    assert len(long) >= 0.9 * len(tracks)
    med = np.array([np.median(np.diff(v[:, 1:], axis=0), axis=0) for v in long])  # per track, px/frame
    assert np.all(np.abs(med - [DX, DY]) < 0.5, axis=1).mean() > 0.9, med
    assert np.abs(np.median(med, axis=0) - [DX, DY]).max() < 0.5
    assert np.all(np.diff(tracks[1][:, 0]) == 1)  # a track is one run of consecutive frames
    assert "corner tracks over 8 frames" in show_flow(cfg, r)[0]


def test_lucas_kanade_redetects_after_a_cut(tmp_path):
    """A scene cut (another texture) after frame 3: the points are lost (measured: 36 of 40; the forward-backward
    check lets a few false matches through) and new corners get new ids."""
    frames = np.concatenate([_frames(0, 4), _frames(1, 4)])
    p = write_video(tmp_path / "cut.mp4", frames, fps=10)
    r = run_flow(FlowConfig(video=str(p), method="lk", out=str(tmp_path / "o"), max_corners=40))
    tracks = _tracks(r["csv"])
    first = [k for k, v in tracks.items() if v[0, 0] == 0]
    later = [k for k, v in tracks.items() if v[0, 0] == 4]
    assert len(first) == 40 and sum(tracks[k][-1, 0] <= 3 for k in first) >= 30  # (nearly) none survives the cut
    assert len(later) >= 20 and min(later) > max(first)  # re-detected at the cut, new ids


def test_one_frame_is_an_error(tmp_path):
    p = write_video(tmp_path / "one.mp4", _frames(0, 1), fps=10)
    with pytest.raises(DataError, match=r"flow: expected a video of at least 2 frames, got 1 \(") as e:
        run_flow(FlowConfig(video=str(p)))
    assert "\n" not in str(e.value)
    with pytest.raises(DataError, match="at least 2 frames, got 1"):
        run_flow(FlowConfig(video=str(write_video(tmp_path / "two.mp4", _frames(0, 2), fps=10)), max_frames=1))
    assert not (tmp_path / "one-flow").exists()


def test_a_long_video_streams(tmp_path, watch_streaming):
    """60 frames, decoded one by one (never all at once): Farneback holds only the first SCALE_PAIRS pairs (for the
    colour scale) and then a chunk, Lucas-Kanade one frame; the table is what the flow of the whole decoded video
    gives, and the colour scale the 99th-percentile speed of the first SCALE_PAIRS pairs."""
    from vislab.data.video.io import video_info
    from vislab.tasks.video.flowviz import CHUNK, SCALE_PAIRS

    t = 60
    p = write_video(tmp_path / "long.mp4", _frames(0, t), fps=10)
    x = torch.from_numpy(read_video(p)).permute(0, 3, 1, 2).float() / 255  # (the test's own whole read, before the patch)
    seen = watch_streaming()
    r = run_flow(FlowConfig(video=str(p), out=str(tmp_path / "f"), gif=True))
    assert r["frames"] == t and r["pairs"] == t - 1 and video_info(r["video"]).frames == t - 1 and read_video(r["gif"]).shape[0] == t - 1
    assert seen["decoded"] == t and seen["written"] == t - 1 and seen["lag"] <= SCALE_PAIRS + CHUNK + 1 < t
    f = torch.cat([farneback(x[s : s + CHUNK + 1][:-1], x[s : s + CHUNK + 1][1:]) for s in range(0, t - 1, CHUNK)])
    rows = list(csv.DictReader(open(r["csv"])))
    assert [int(row["frame"]) for row in rows] == list(range(t - 1))
    got = np.array([[float(row[c]) for c in ("mean_magnitude", "max_magnitude", "mean_dx", "mean_dy")] for row in rows])
    mag = f.norm(dim=1)
    want = torch.stack([mag.mean((1, 2)), mag.amax((1, 2)), f[:, 0].mean((1, 2)), f[:, 1].mean((1, 2))], 1).numpy()
    assert np.abs(got - want).max() < 2e-4
    assert r["mean_dx"] == pytest.approx(float(f[:, 0].mean()), abs=1e-3) and r["mean_magnitude"] == pytest.approx(float(mag.mean()), abs=1e-3)
    first = f[:SCALE_PAIRS, :, ::2, ::2].half().float().norm(dim=1)
    assert r["color_max_magnitude"] == pytest.approx(float(np.percentile(first.numpy(), 99)), rel=1e-3)

    seen.update(decoded=0, written=0, lag=0)
    r = run_flow(FlowConfig(video=str(p), method="lk", out=str(tmp_path / "lk"), max_corners=60, max_frames=45))
    assert r["frames"] == video_info(r["video"]).frames == seen["decoded"] == seen["written"] == 45 and seen["lag"] <= 2
    tracks = _tracks(r["csv"])
    assert {int(v[k, 0]) for v in tracks.values() for k in range(len(v))} == set(range(45)) and r["points"] == sum(map(len, tracks.values()))
