"""vislab.data.video.sampling: shapes, every index in range, determinism, TSN's one frame per segment, dense clips
covering the video's ends, and short videos (error / loop / repeat)."""

from __future__ import annotations

import numpy as np
import pytest

from vislab.core.errors import DataError
from vislab.data.video.sampling import (PADS, SAMPLING, dense, fit_length, pad_indices, random_crop, sample, span, tsn,
                                        uniform)

LENGTHS = [1, 2, 5, 8, 9, 16, 17, 31, 100, 301]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


@pytest.mark.parametrize("method", SAMPLING)
@pytest.mark.parametrize("pad", ["loop", "repeat"])
@pytest.mark.parametrize("n", LENGTHS)
def test_every_method_gives_int64_indices_in_range(method, pad, n):
    for clip_len, stride, n_clips in [(1, 1, 1), (4, 2, 3), (8, 1, 1), (16, 3, 5)]:
        gens = ([] if method == "random" else [None]) + ([] if method == "uniform" else [rng(n)])  # evaluation, training
        for g in gens:
            idx = sample(method, n, clip_len, stride, n_clips, g, pad=pad)
            assert idx.dtype == np.int64
            assert idx.shape == (n_clips, clip_len)
            assert idx.min() >= 0 and idx.max() < n, (method, n, clip_len, stride)


@pytest.mark.parametrize("method", SAMPLING)
def test_same_seed_same_indices_and_evaluation_is_deterministic(method):
    a = sample(method, 200, 8, 2, 3, rng(7))
    b = sample(method, 200, 8, 2, 3, rng(7))
    np.testing.assert_array_equal(a, b)
    if method != "random":
        np.testing.assert_array_equal(sample(method, 200, 8, 2, 3), sample(method, 200, 8, 2, 3))
    if method in ("random", "dense", "tsn"):  # a generator means random draws: another seed, other indices
        assert any((sample(method, 200, 8, 2, 3, rng(s)) != a).any() for s in range(8, 12))


def test_span():
    assert span(16, 1) == 16 and span(1, 5) == 1 and span(8, 4) == 29


def test_dense_clips_are_strided_and_cover_the_start_and_the_end():
    for n, clip_len, stride, n_clips in [(100, 16, 1, 3), (100, 8, 4, 5), (29, 8, 4, 2), (50, 10, 2, 10), (1000, 16, 2, 4)]:
        idx = dense(n, clip_len, stride, n_clips)
        assert (np.diff(idx, axis=1) == stride).all()
        assert idx[0, 0] == 0 and idx[-1, -1] == n - 1  # the first clip starts the video, the last one ends it
        starts = idx[:, 0]
        assert (np.diff(starts) >= 0).all() and np.ptp(np.diff(starts)) <= 1  # evenly spread (rounding: +-1)


def test_dense_single_clip_is_centred():
    idx = dense(100, 16)[0]
    assert idx[0] == 42 and idx[-1] == 57  # 42 frames before, 42 after
    idx = dense(101, 16)[0]
    assert (idx[0], 100 - idx[-1]) in [(42, 43), (43, 42)]
    np.testing.assert_array_equal(dense(16, 16), np.arange(16)[None])


def test_uniform_spreads_over_the_whole_video():
    idx = uniform(100, 10)[0]
    np.testing.assert_array_equal(idx, np.arange(5, 100, 10))
    np.testing.assert_array_equal(np.diff(uniform(160, 16)[0]), 10)
    two = uniform(100, 10, n_clips=2)
    np.testing.assert_array_equal(two, [np.arange(2, 100, 10), np.arange(7, 100, 10)])  # offsets 1/4 and 3/4 of a spacing
    many = uniform(100, 10, n_clips=10)
    assert len(np.unique(many)) == 100  # ten shifted copies of ten frames: every frame once
    assert (np.diff(many[:, 0]) > 0).all() and many[-1, -1] == 99


def test_tsn_one_frame_per_segment():
    for n, segments in [(10, 5), (12, 3), (100, 8), (17, 16), (16, 16), (1000, 7)]:
        bounds = np.arange(segments + 1) * n // segments
        for g in (None, rng(0), rng(1), rng(2)):
            idx = tsn(n, segments, g)
            assert idx.shape == (1, segments)
            seg = np.searchsorted(bounds, idx[0], side="right") - 1
            np.testing.assert_array_equal(seg, np.arange(segments))  # frame k lies in segment k
        middle = tsn(n, segments)[0]
        np.testing.assert_array_equal(middle, bounds[:-1] + (bounds[1:] - bounds[:-1]) // 2)


def test_tsn_training_draws_cover_each_segment():
    draws = np.concatenate([tsn(40, 4, rng(s)) for s in range(200)])
    for k in range(4):
        assert set(draws[:, k].tolist()) == set(range(10 * k, 10 * k + 10))


def test_random_crop_starts_anywhere_and_needs_a_generator():
    idx = np.concatenate([random_crop(20, 4, 2, rng(s)) for s in range(300)])
    assert idx.shape == (300, 4)
    assert (np.diff(idx, axis=1) == 2).all()
    assert set(idx[:, 0].tolist()) == set(range(20 - span(4, 2) + 1))  # every start 0..13 happens, none past it
    with pytest.raises(DataError, match="Generator"):
        random_crop(20, 4, 2, None)  # type: ignore[arg-type]


def test_sample_dispatch():
    np.testing.assert_array_equal(sample("dense", 100, 8, 2, 3), dense(100, 8, 2, 3))
    np.testing.assert_array_equal(sample("dense", 100, 8, 2, 1, rng(3)), random_crop(100, 8, 2, rng(3)))
    np.testing.assert_array_equal(sample("random", 100, 8, 2, 1, rng(3)), random_crop(100, 8, 2, rng(3)))
    np.testing.assert_array_equal(sample("uniform", 100, 8, 2, 2), uniform(100, 8, 2))  # stride ignored
    np.testing.assert_array_equal(sample("uniform", 100, 8, 1, 1, rng(3)), uniform(100, 8))  # deterministic always
    np.testing.assert_array_equal(sample("tsn", 100, 8), tsn(100, 8))
    np.testing.assert_array_equal(sample("tsn", 100, 8, generator=rng(4)), tsn(100, 8, rng(4)))
    with pytest.raises(DataError, match="training only"):
        sample("random", 100, 8)
    with pytest.raises(DataError, match=r"expected one of dense, uniform, tsn, random, got 'dens' \(did you mean 'dense'\?\)"):
        sample("dens", 100, 8)


def test_pad_loop_and_repeat_on_a_5_frame_video():
    assert sample("dense", 5, 8, pad="loop").tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    assert sample("dense", 5, 8, pad="repeat").tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    assert sample("dense", 5, 4, stride=2, pad="loop").tolist() == [[0, 2, 4, 1]]  # span 7 > 5
    assert sample("uniform", 5, 8, pad="repeat").tolist() == [[0, 1, 2, 3, 4, 4, 4, 4]]
    assert sample("tsn", 5, 8, pad="loop").tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]
    loop = sample("random", 5, 8, generator=rng(0), pad="loop")
    assert loop.tolist() == [[0, 1, 2, 3, 4, 0, 1, 2]]  # the padded length is exactly one clip: one start
    one = sample("dense", 1, 8, 2, 3, pad="repeat")
    assert (one == 0).all() and one.shape == (3, 8)
    # a long-enough video is not touched by pad
    for pad in PADS:
        np.testing.assert_array_equal(sample("dense", 100, 8, 2, 3, pad=pad), dense(100, 8, 2, 3))


def test_short_video_error_message():
    with pytest.raises(DataError) as e:
        sample("dense", 9, 16, 1, what="video data/a.mp4")
    assert str(e.value) == ("video data/a.mp4: expected at least 16 frames for --clip-len 16 --frame-stride 1, got 9 "
                            "(use --pad loop or --pad repeat)")
    with pytest.raises(DataError, match=r"expected at least 29 frames for --clip-len 8 --frame-stride 4, got 20"):
        sample("random", 20, 8, 4, generator=rng(0))
    with pytest.raises(DataError, match=r"^video: expected at least 8 frames for --clip-len 8, got 5 \(use --pad"):
        sample("tsn", 5, 8)
    with pytest.raises(DataError, match=r"expected at least 8 frames for --clip-len 8, got 5"):
        sample("uniform", 5, 8)
    assert "\n" not in str(e.value)


def test_fit_length_and_pad_indices():
    assert fit_length(20, 16) == 20 and fit_length(16, 16) == 16
    assert fit_length(9, 16, pad="loop") == 16 and fit_length(9, 16, pad="repeat") == 16
    with pytest.raises(DataError, match="expected at least 16 frames, got 9"):
        fit_length(9, 16, "video x", "error")
    with pytest.raises(DataError, match="expected at least 1 frame, got 0"):
        fit_length(0, 16, "video x", "loop")  # nothing to loop over
    with pytest.raises(DataError, match="expected --pad one of error, loop, repeat, got 'wrap'"):
        fit_length(20, 16, "video x", "wrap")
    np.testing.assert_array_equal(pad_indices(np.arange(12), 5, "loop"), np.arange(12) % 5)
    np.testing.assert_array_equal(pad_indices(np.arange(12), 5, "repeat"), np.minimum(np.arange(12), 4))


@pytest.mark.parametrize("bad", [dict(clip_len=0), dict(stride=0), dict(n_clips=0)])
def test_bad_arguments(bad):
    kw = dict(clip_len=4, stride=1, n_clips=1) | bad
    with pytest.raises(DataError, match=">= 1"):
        sample("dense", 100, kw["clip_len"], kw["stride"], kw["n_clips"])
