"""vislab.ops superpixels, connected components, optical flow and proposals (OpenCV / scikit-image backed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from ops_helpers import assert_close, hwc, rand

from vislab import ops
from vislab.core.errors import ConfigError, ShapeError


def _texture(h=40, w=48, seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(1, 1, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(x, (h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_slic_matches_skimage_and_batches():
    from skimage.segmentation import slic

    x = ops.gaussian_blur(rand(2, 3, 17, 11), 3)
    lab = ops.slic(x, n_segments=8)
    assert lab.shape == (2, 1, 17, 11) and lab.dtype == torch.int64
    ref = slic(hwc(x[1]).astype(np.float64), n_segments=8, compactness=10.0, sigma=1.0, start_label=0, channel_axis=-1)
    assert (lab[1, 0].numpy() == ref).all()
    assert torch.equal(ops.slic(x[0], n_segments=8), lab[0])
    assert torch.equal(ops.Slic(8)(x), lab)
    u8 = (hwc(x[0]) * 255).astype(np.uint8)
    assert ops.slic(u8, n_segments=8).shape == (17, 11)
    with pytest.raises(ShapeError):
        ops.slic(rand(1, 2, 5, 5))


def test_superpixel_mean_and_boundaries():
    x = rand(2, 3, 6, 5).double().requires_grad_(True)
    lab = torch.zeros(2, 1, 6, 5, dtype=torch.long)
    lab[:, :, 3:] = 1
    y = ops.superpixel_mean(x, lab)
    assert_close(y[0, :, 0, 0], x[0, :, :3].mean((1, 2)), 1e-12)
    assert_close(y[1, :, 5, 4], x[1, :, 3:].mean((1, 2)), 1e-12)
    assert torch.autograd.gradcheck(lambda t: ops.superpixel_mean(t, lab), (x,), fast_mode=True)
    b = ops.mark_boundaries(x.detach(), lab, (1.0, 0.0, 0.0))
    assert (b[:, 0, 2] == 1).all() and (b[:, 1, 2] == 0).all() and torch.equal(b[:, :, 0], x.detach()[:, :, 0])
    with pytest.raises(ShapeError):
        ops.superpixel_mean(x, lab[:, :, :3])


def test_connected_components_match_opencv():
    m = (np.random.default_rng(0).random((17, 11)) > 0.6).astype(np.uint8) * 255
    for conn in (4, 8):
        n, ref, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=conn)
        lab, st = ops.connected_components(m, conn, stats=True)
        assert lab.shape == (17, 11) and (lab == ref).all()
        assert (st.numpy() == stats[1:]).all() and len(st) == n - 1
    t = torch.from_numpy(m / 255.0).float()[None, None].expand(2, 1, 17, 11)
    lab = ops.connected_components(t)
    assert lab.shape == (2, 1, 17, 11) and torch.equal(lab[0], lab[1])
    with pytest.raises(ConfigError):
        ops.connected_components(t, 6)
    with pytest.raises(ShapeError):
        ops.connected_components(rand(1, 3, 4, 4))


def test_lucas_kanade_and_corners_recover_a_shift():
    a = _texture()
    b = torch.roll(a, shifts=(1, 2), dims=(2, 3))  # content moves 2 right, 1 down
    pts = ops.good_features_to_track(a, 30, 0.01, 3)
    ref = cv2.goodFeaturesToTrack(hwc(a)[:, :, 0], 30, 0.01, 3, blockSize=3)
    assert_close(pts[0], ref.reshape(-1, 2), 1e-4)
    f = ops.lucas_kanade(a, b)[0]
    inner = f.status & (f.points0[:, 0] > 4) & (f.points0[:, 0] < 43) & (f.points0[:, 1] > 4) & (f.points0[:, 1] < 35)
    assert inner.sum() >= 5
    assert_close((f.points1 - f.points0)[inner].median(0).values, [2.0, 1.0], 0.1)
    single = ops.lucas_kanade(a[0], b[0], points=[[20.0, 20.0]])
    assert single.points1.shape == (1, 2)


def test_farneback_matches_opencv_and_recovers_shift():
    a = _texture()
    b = torch.roll(a, shifts=(1, 2), dims=(2, 3))
    flow = ops.farneback(torch.cat([a, a]), torch.cat([b, b]))
    assert flow.shape == (2, 2, 40, 48)
    ref = cv2.calcOpticalFlowFarneback(hwc(a)[:, :, 0] * 255, hwc(b)[:, :, 0] * 255, None, 0.5, 3, 15, 3, 5, 1.2, 0)
    assert_close(hwc(flow[0]), ref, 1e-4)
    assert_close(flow[0, :, 12:28, 12:36].mean((1, 2)), [2.0, 1.0], 0.25)
    assert_close(ops.Farneback()(a, b), flow[:1], 1e-6)
    assert ops.farneback(hwc(a), hwc(b)).shape == (40, 48, 2)
    with pytest.raises(ShapeError):
        ops.farneback(a, b[..., :20])


def test_flow_to_color():
    f = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]]).T.reshape(1, 2, 1, 4)
    rgb = ops.flow_to_color(f)
    assert_close(rgb[0, :, 0, 0], [1, 0, 0], 1e-5)  # right: red
    assert_close(rgb[0, :, 0, 2], [0, 1, 1], 1e-5)  # left: cyan
    assert_close(ops.flow_to_color(f * 0.5, max_magnitude=1.0).amax(), 0.5, 1e-5)
    x = (torch.rand(1, 2, 3, 3, dtype=torch.float64) - 0.5).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: ops.flow_to_color(t, 1.0), (x,), fast_mode=True)
    assert ops.flow_to_color(np.zeros((4, 5, 2), np.float32)).shape == (4, 5, 3)
    with pytest.raises(ShapeError):
        ops.flow_to_color(torch.zeros(1, 3, 4, 4))


def test_selective_search_and_drawing():
    x = ops.gaussian_blur(rand(2, 3, 33, 29), 3)
    boxes = ops.selective_search(x, "fast", max_boxes=50)
    assert len(boxes) == 2 and all(b.shape[1] == 4 and len(b) > 0 for b in boxes)
    for b in boxes:
        assert (b[:, 0] <= b[:, 2]).all() and (b[:, 1] <= b[:, 3]).all() and b[:, 2].max() <= 29 and b[:, 3].max() <= 33
    assert torch.equal(ops.selective_search(x[1], "fast", max_boxes=50), boxes[1])
    small = ops.selective_search(x, "single", max_side=16)
    assert all(b[:, 2].max() <= 29 for b in small)
    assert len(ops.SelectiveSearch("single")(x)) == 2
    drawn = ops.draw_boxes(x, boxes[0][:3])
    assert drawn.shape == x.shape and not torch.equal(drawn, x)
    assert ops.draw_tracks(x[0], [[2.0, 2.0]], [[6.0, 5.0]], scale=2).shape == (3, 33, 29)
    with pytest.raises(ConfigError):
        ops.selective_search(x, "slow")
