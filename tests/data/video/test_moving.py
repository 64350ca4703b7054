"""The generated moving-object videos: shapes, determinism, exact boxes and flow, and the time symmetry that makes
a model without frame order unable to tell left from right."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest

from vislab.core.errors import DataError
from vislab.data.video.formats import list_videos
from vislab.data.video.io import read_video
from vislab.data.video.synthetic import MOTIONS, PRESETS, make_moving, write_moving


@pytest.fixture(scope="module")
def lr():
    return make_moving(400, classes=PRESETS["moving-lr"], seed=0)


def _cx(d):
    return (d.boxes[..., 0] + d.boxes[..., 2]) / 2


def test_shapes_dtypes_and_balance():
    d = make_moving(70, classes=MOTIONS, frames=6, size=24, seed=1)
    assert d.clips.shape == (70, 6, 24, 24, 3) and d.clips.dtype == np.uint8
    assert d.labels.shape == (70,) and d.labels.dtype == np.int64
    assert d.boxes.shape == (70, 6, 4) and d.boxes.dtype == np.float32
    assert d.flow.shape == (70, 5, 2, 24, 24) and d.flow.dtype == np.float32
    assert d.frame_labels.shape == (70, 6) and (d.frame_labels == d.labels[:, None]).all()
    assert d.classes == list(MOTIONS) and np.bincount(d.labels).tolist() == [10] * 7
    assert d.labels[:14].tolist() != sorted(d.labels[:14].tolist())  # shuffled
    gray = make_moving(9, classes="moving-lr", channels=1, size=16, frames=3)
    assert gray.clips.shape == (9, 3, 16, 16, 1) and sorted(np.bincount(gray.labels).tolist()) == [4, 5]


def test_deterministic_by_seed():
    a, b, c = make_moving(20, seed=5), make_moving(20, seed=5), make_moving(20, seed=6)
    assert all(np.array_equal(getattr(a, k), getattr(b, k)) for k in ("clips", "labels", "boxes", "flow"))
    assert not np.array_equal(a.clips, c.clips)


def test_boxes_inside_the_frame_and_around_the_object():
    d = make_moving(140, classes=MOTIONS, frames=8, size=32, seed=2, clutter=0, noise=0)
    assert d.boxes.min() >= 0 and d.boxes.max() <= 32
    assert (d.boxes[..., 2] > d.boxes[..., 0]).all() and (d.boxes[..., 3] > d.boxes[..., 1]).all()
    bright = d.clips.max(-1) > 0.6 * 255  # the object (its strongest channel >= 0.85); the background is <= 0.2
    ys, xs = np.arange(32) + 0.5, np.arange(32) + 0.5
    for i in range(0, 140, 7):
        for t in (0, 7):
            y, x = np.nonzero(bright[i, t])
            x0, y0, x1, y1 = d.boxes[i, t]
            assert len(x) and xs[x].min() >= x0 and xs[x].max() <= x1 and ys[y].min() >= y0 and ys[y].max() <= y1


def test_flow_matches_the_box_motion():
    d = make_moving(200, classes=MOTIONS, seed=3)
    centre = np.stack([_cx(d), (d.boxes[..., 1] + d.boxes[..., 3]) / 2], -1)  # (N, T, 2)
    motion = centre[:, 1:] - centre[:, :-1]
    moving = np.isin(np.array(d.classes)[d.labels], ["left", "right", "up", "down", "circle"])
    for i in np.flatnonzero(moving):
        for t in range(d.flow.shape[1]):
            on = np.abs(d.flow[i, t]).sum(0) > 0
            assert on.sum() > 4
            assert np.abs(d.flow[i, t][:, on] - motion[i, t][:, None]).max() < 0.5
    # grow: the flow points away from the centre, 0 at it; the box edge moves by the flow at the edge
    i = int(np.flatnonzero(np.array(d.classes)[d.labels] == "grow")[0])
    x0, _, x1, _ = d.boxes[i, 0]
    f = d.flow[i, 0]
    on = np.abs(f).sum(0) > 0
    xx = np.nonzero(on)[1]
    cx = (x0 + x1) / 2
    assert (np.sign(f[0][on]) == np.sign(xx + 0.5 - cx)).mean() > 0.9
    growth = (d.boxes[i, 1, 2] - d.boxes[i, 1, 0]) / (x1 - x0) - 1
    assert np.allclose(f[0][on], (xx + 0.5 - cx) * growth, atol=1e-4)
    assert (d.flow[~moving & (np.array(d.classes)[d.labels] != "grow")][:, :, :, 0, 0] == 0).all()


def test_left_and_right_are_mirror_images_in_time(lr):
    cx, left, right = _cx(lr), lr.labels == 0, lr.labels == 1
    assert lr.classes == ["left", "right"] and left.sum() == right.sum() == 200
    assert abs(cx[left].mean() - cx[right].mean()) < 1.0  # the same positions over a clip
    assert np.abs(cx[left].mean(0) - cx[right].mean(0)[::-1]).max() < 1.0  # frame t of left ~ frame T-1-t of right
    assert np.abs(np.sort(cx[left, 0]).mean() - np.sort(cx[right, -1]).mean()) < 1.0
    # the y positions (across the motion) and the object sizes do not depend on the direction either
    cy = (lr.boxes[..., 1] + lr.boxes[..., 3]) / 2
    assert abs(cy[left].mean() - cy[right].mean()) < 1.0
    w = lr.boxes[..., 2] - lr.boxes[..., 0]
    assert abs(w[left].mean() - w[right].mean()) < 0.3


def test_frames_without_order_do_not_tell_the_direction(lr):
    # the histogram of all (frame-pooled) object x positions: left and right clips alike
    cx = _cx(lr)
    bins = np.linspace(0, 32, 9)
    hl = np.histogram(cx[lr.labels == 0], bins)[0] / cx[lr.labels == 0].size
    hr = np.histogram(cx[lr.labels == 1], bins)[0] / cx[lr.labels == 1].size
    assert np.abs(hl - hr).sum() < 0.15
    # and the frames' mean image (pooled over time) has no left / right tilt
    gray = lr.clips.astype(np.float32).mean(-1)  # (N, T, H, W)
    bright = (gray > 150).mean(1)  # (N, H, W): where the object was, pooled over time
    col = np.arange(32) + 0.5
    centre = (bright * col).sum((1, 2)) / np.maximum(bright.sum((1, 2)), 1)
    assert abs(centre[lr.labels == 0].mean() - centre[lr.labels == 1].mean()) < 1.0


def test_grow_and_shrink_mirror_each_other():
    d = make_moving(400, classes=["grow", "shrink"], seed=4)
    w = d.boxes[..., 2] - d.boxes[..., 0]
    g, s = w[d.labels == 0], w[d.labels == 1]
    assert (np.diff(g, axis=1) > 0).all() and (np.diff(s, axis=1) < 0).all()
    assert np.abs(g.mean(0) - s.mean(0)[::-1]).max() < 0.5 and abs(g.mean() - s.mean()) < 0.5


def test_bad_arguments():
    with pytest.raises(DataError, match="expected motions out of .*, got 'lefft' \\(did you mean 'left'\\?\\)"):
        make_moving(4, classes=["lefft", "right"])
    with pytest.raises(DataError, match="distinct motions"):
        make_moving(4, classes=["left", "left"])
    with pytest.raises(DataError, match="frames >= 2"):
        make_moving(4, frames=1)
    assert make_moving(4, classes="moving-all").classes == list(MOTIONS)


def test_long_clips_slow_down_to_fit():
    d = make_moving(40, classes="moving", frames=24, size=32, seed=0)
    assert d.boxes.min() >= 0 and d.boxes.max() <= 32


def test_fast():
    make_moving(8)
    t = time.perf_counter()
    make_moving(400, frames=8, size=32)
    assert time.perf_counter() - t < 2.0  # about 0.3 s here; the bound leaves room for a busy machine


@pytest.mark.parametrize("fmt", ["mp4", "frames"])
def test_write_moving_as_a_class_folder_dataset(tmp_path, fmt):
    root = write_moving(tmp_path / "moving", n=8, classes="moving-lr", frames=4, size=16, seed=0, format=fmt)
    listing = list_videos(root)
    assert listing.layout == "class-folders" and listing.classes == ["left", "right"]
    assert [i.video_id for i in listing.train] == [f"{c}/{c}_{k:04d}" for c in ("left", "right") for k in range(4)]
    meta = json.loads((root / "boxes.json").read_text())
    assert set(meta["videos"]) == {i.video_id for i in listing.train} and meta["box_format"] == "xyxy"
    assert np.asarray(meta["videos"]["left/left_0000"]).shape == (4, 4)
    frames = read_video(listing.train[0].path)
    assert frames.shape == (4, 16, 16, 3)
    d = make_moving(8, classes="moving-lr", frames=4, size=16, seed=0)
    first = d.clips[np.flatnonzero(d.labels == 0)[0]]
    err = np.abs(frames.astype(int) - first.astype(int)).mean()
    assert err < (1 if fmt == "frames" else 25)
    with pytest.raises(DataError, match="expected a format out of frames, mp4"):
        write_moving(tmp_path / "x", n=2, format="mov")


def test_bouncing_objects_turn_once_and_their_frame_labels_follow_the_motion():
    from vislab.data.video.synthetic import make_moving

    d = make_moving(64, "moving-bounce", frames=8, seed=5)
    sign = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
    centre = np.stack([(d.boxes[..., 0] + d.boxes[..., 2]) / 2, (d.boxes[..., 1] + d.boxes[..., 3]) / 2], -1)  # (N, T, 2)
    step = np.diff(centre, axis=1)  # (N, T-1, 2): into frames 1..T-1
    for i in range(len(d.labels)):
        assert d.frame_labels[i, 0] == d.labels[i]  # frame 0 takes the first step's direction, the clip's label
        assert len(np.unique(d.frame_labels[i])) == 2  # it turns back exactly once
        for t in range(1, 8):
            want = np.array(sign[d.classes[d.frame_labels[i, t]]])
            got = step[i, t - 1]
            assert np.dot(got, want) > 0 and abs(got[want == 0]).max() < 1e-3, (i, t, got, want)
    with pytest.raises(DataError, match="bouncing clips"):
        make_moving(8, ("left",), frames=8, bounce=True)
