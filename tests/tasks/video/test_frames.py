"""``vislab video frames``: a tiny classify run and a tiny detect run (trained here, about a second each) applied to
a generated video; the annotated video, the table, ``--every``, tracking ids, and the errors for other runs."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from vislab.core.errors import CheckpointError, ConfigError
from vislab.data.video.io import read_video, write_video
from vislab.tasks.video.frames import FramesConfig, run_frames, show_frames

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "runs_v0_1"
QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1}
N = 10  # frames of the test video


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    from vislab.core import config as C
    from vislab.tasks import classify, detect

    out = tmp_path_factory.mktemp("runs")
    c = classify.train(C.from_dict(classify.ClassifyConfig, {"data": "shapes", "img_size": 24, "synth_count": 200, "epochs": 1,
                                                             "out": str(out), "name": "c", **QUIET}))
    d = detect.train(C.from_dict(detect.DetectConfig, {"synth_count": 32, "img_size": 48, "width": 8, "epochs": 1, "batch_size": 8,
                                                       "out": str(out), "name": "d", **QUIET}))
    return {"classify": c, "detect": d}


def _scene(t: int) -> np.ndarray:
    """Frame ``t``: a red disc moving right 2 px/frame and a green square standing still, on dark gray."""
    import cv2

    a = np.full((48, 64, 3), 30, np.uint8)
    cv2.circle(a, (12 + 2 * t, 28), 8, (220, 60, 60), -1)
    cv2.rectangle(a, (44, 4), (58, 18), (60, 220, 60), -1)
    return a


@pytest.fixture(scope="module")
def video(tmp_path_factory):
    return write_video(tmp_path_factory.mktemp("video") / "clip.mp4", np.stack([_scene(t) for t in range(N)]), fps=10)


def test_classify_a_video(runs, video, tmp_path):
    cfg = FramesConfig(checkpoint=str(runs["classify"]), video=str(video), out=str(tmp_path / "o"), batch_size=4)
    r = run_frames(cfg)
    assert r["task"] == "classify" and r["frames"] == r["rows"] == N
    assert read_video(r["annotated"]).shape[0] == N and (tmp_path / "o" / "timeline.png").stat().st_size > 5000
    rows = list(csv.DictReader(open(r["table"])))
    assert len(rows) == N and [int(x["frame"]) for x in rows] == list(range(N))
    assert [float(x["time"]) for x in rows] == pytest.approx([t / 10 for t in range(N)])
    assert all(x["label"] == x["top1_label"] for x in rows)
    # 4 classes, top-4 in the table: the video's label is the class of highest mean probability
    classes = ["circle", "square", "triangle", "star"]
    mean = {c: np.mean([float(x[f"top{k}_prob"]) for x in rows for k in range(1, 5) if x[f"top{k}_label"] == c]) for c in classes}
    assert r["video_label"] == max(mean, key=mean.get) and r["video_prob"] == pytest.approx(mean[r["video_label"]], abs=1e-5)
    lines = show_frames(cfg, r)
    assert f"the video: {r['video_label']}" in lines[0] and lines[-1].endswith("annotated.mp4, frames.csv, timeline.png")

    # every 2nd frame, as JSON, into the default folder <run>/frames/<video stem>
    r2 = run_frames(FramesConfig(checkpoint=str(runs["classify"]), video=str(video), every=2, format="json", gif=True))
    assert Path(r2["out"]) == runs["classify"] / "frames" / "clip"
    assert r2["frames"] == N // 2 and read_video(r2["annotated"]).shape[0] == N // 2 and read_video(r2["gif"]).shape[0] == N // 2
    rows2 = json.loads(Path(r2["table"]).read_text())
    assert [x["frame"] for x in rows2] == [0, 2, 4, 6, 8] and len(rows2[0]["topk"]) == 4 and r2["fps"] == 5.0
    assert run_frames(FramesConfig(checkpoint=str(runs["classify"]), video=str(video), out=str(tmp_path / "m"), max_frames=3))["frames"] == 3


def test_detect_a_video(runs, video, tmp_path):
    cfg = FramesConfig(checkpoint=str(runs["detect"]), video=str(video), out=str(tmp_path / "d"), score_threshold=0.0, batch_size=4)
    r = run_frames(cfg)
    assert r["task"] == "detect" and r["frames"] == N and r["tracks"] == 0
    assert read_video(r["annotated"]).shape == (N, 192, 256, 3)  # upscaled x4 for readable captions
    rows = list(csv.DictReader(open(r["table"])))
    assert len(rows) == r["rows"] > 0  # a 1-epoch detector at threshold 0: boxes on every frame
    assert list(rows[0]) == ["frame", "time", "track_id", "label", "score", "x1", "y1", "x2", "y2"]
    assert {int(x["frame"]) for x in rows} == set(range(N)) and all(x["track_id"] == "" for x in rows)
    assert all(0 <= float(x["x1"]) <= float(x["x2"]) <= 64 and 0 <= float(x["y1"]) <= float(x["y2"]) <= 48 for x in rows)
    tracked = run_frames(FramesConfig(checkpoint=str(runs["detect"]), video=str(video), out=str(tmp_path / "t"), score_threshold=0.0,
                                      track=True, every=2, format="json"))
    assert tracked["frames"] == N // 2 and tracked["tracks"] >= 1
    assert all(x["track_id"] >= 1 for x in json.loads(Path(tracked["table"]).read_text()))


def test_tracking_gives_stable_ids(runs, video, tmp_path, monkeypatch):
    """A 1-epoch detector finds no real objects, so the detections come from an oracle that finds the two shapes by
    colour (a stand-in for a trained detector; the tracker itself is tested in test_track.py): the moving disc and
    the still square keep one id each across the video."""
    from vislab.tasks.detect import infer

    def oracle(model, imgs, state, device, score_thresh):
        out = []
        for a in imgs:
            boxes, labels = [], []
            for label, mask in ((0, (a[..., 0] > 150) & (a[..., 1] < 120)), (1, (a[..., 1] > 150) & (a[..., 0] < 120))):
                ys, xs = np.nonzero(mask)
                boxes.append([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
                labels.append(label)
            out.append({"boxes": np.array(boxes, np.float32), "scores": np.array([0.9, 0.8], np.float32), "labels": np.array(labels)})
        return out

    monkeypatch.setattr(infer, "detect_batch", oracle)
    cfg = FramesConfig(checkpoint=str(runs["detect"]), video=str(video), out=str(tmp_path / "o"), track=True)
    r = run_frames(cfg)
    rows = list(csv.DictReader(open(r["table"])))
    assert r["tracks"] == 2 and r["rows"] == len(rows) == 2 * N
    ids = {lab: {x["track_id"] for x in rows if x["label"] == lab} for lab in ("circle", "square")}
    assert ids == {"circle": {"1"}, "square": {"2"}}
    disc = [float(x["x1"]) for x in rows if x["label"] == "circle"]
    assert np.allclose(np.diff(disc), 2, atol=1)  # the disc did move
    assert "20 boxes (score >= 0.3) in 2 tracks" in show_frames(cfg, r)[0]


def test_other_runs_and_bad_options_are_one_line_errors(runs, video, tmp_path):
    with pytest.raises(CheckpointError, match="frames: expected a classify or detect run, got a segment run") as e:
        run_frames(FramesConfig(checkpoint=str(FIXTURES / "segment" / "legacy"), video=str(video), out=str(tmp_path / "s")))
    assert "\n" not in str(e.value) and not (tmp_path / "s").exists()
    from safetensors.torch import save_file
    import torch

    save_file({"w": torch.zeros(2)}, str(tmp_path / "plain.safetensors"))
    with pytest.raises(CheckpointError, match="frames: expected a classify or detect run, got a checkpoint vislab cannot read .*without vislab state"):
        run_frames(FramesConfig(checkpoint=str(tmp_path / "plain.safetensors"), video=str(video)))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="frames: expected a classify or detect run"):
        run_frames(FramesConfig(checkpoint=str(tmp_path / "junk.pth"), video=str(video)))
    with pytest.raises(ConfigError, match="--every: expected >= 1, got 0"):
        run_frames(FramesConfig(checkpoint=str(runs["classify"]), video=str(video), every=0))
    from vislab.core.errors import DataError

    with pytest.raises(DataError, match="no such file"):
        run_frames(FramesConfig(checkpoint=str(runs["classify"]), video=str(tmp_path / "missing.mp4")))


def test_a_long_video_streams(runs, tmp_path, watch_streaming):
    """60 frames: decoded one by one (never all at once), at most a batch ahead of the annotated video; decoding
    stops after the last frame asked for; the outputs are those of a whole-video read."""
    from vislab.data.video.io import video_info

    long = write_video(tmp_path / "long.mp4", np.stack([_scene(t % 25) for t in range(60)]), fps=10)
    seen = watch_streaming()
    r = run_frames(FramesConfig(checkpoint=str(runs["classify"]), video=str(long), out=str(tmp_path / "c"), batch_size=8, gif=True))
    assert r["frames"] == r["rows"] == 60 and video_info(r["annotated"]).frames == 60 and read_video(r["gif"]).shape[0] == 60
    assert seen["decoded"] == seen["written"] == 60 and seen["lag"] <= 8
    rows = list(csv.DictReader(open(r["table"])))
    assert [int(x["frame"]) for x in rows] == list(range(60)) and float(rows[-1]["time"]) == pytest.approx(5.9)

    seen.update(decoded=0, written=0, lag=0)
    r = run_frames(FramesConfig(checkpoint=str(runs["classify"]), video=str(long), out=str(tmp_path / "e"), every=3, max_frames=7, batch_size=2))
    assert [x["frame"] for x in map(dict, csv.DictReader(open(r["table"])))] == [str(3 * k) for k in range(7)]
    assert r["frames"] == seen["written"] == 7 and seen["decoded"] == 19 and r["fps"] == pytest.approx(10 / 3)

    seen.update(decoded=0, written=0, lag=0)
    r = run_frames(FramesConfig(checkpoint=str(runs["detect"]), video=str(long), out=str(tmp_path / "d"), score_threshold=0.0, track=True,
                                batch_size=8))
    assert r["frames"] == 60 and video_info(r["annotated"]).frames == 60 and seen["lag"] <= 8 and r["tracks"] >= 1
    rows = list(csv.DictReader(open(r["table"])))
    assert len(rows) == r["rows"] and {int(x["frame"]) for x in rows} == set(range(60)) and all(int(x["track_id"]) >= 1 for x in rows)
