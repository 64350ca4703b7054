"""``vislab video`` on files: a folder of mp4 class folders trains through the disk cache (decoded once), and its run
evaluates (clip and video accuracy), predicts (per clip, per frame, timeline, annotated mp4), explains (CAM GIF) and
exports; frame folders and the KTH layout train; bad inputs are one line and exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislab.data.video.io import read_video, video_info, write_video
from vislab.data.video.synthetic import write_moving

FAST = ["--model", "c3d", "--width", "4", "--clip-len", "4", "--batch-size", "8", "--threads", "1", "--precision", "fp32",
        "--progress", "off", "--no-tensorboard", "--val-split", "0.25", "--test-split", "0.25"]


@pytest.fixture(scope="module")
def folder_run(tmp_path_factory):
    """A c3d run on 32 generated mp4 videos of 12 frames, trained through a disk cache."""
    from vislab.cli.main import main

    root = tmp_path_factory.mktemp("video")
    data = write_moving(root / "moving", n=32, frames=12, size=32, seed=1)
    cache = root / "cache"
    try:
        main(["video", "train", *FAST, "--data", str(data), "--img-size", "32", "--epochs", "2", "--cache", str(cache), "--eval-clips", "2",
              "--out", str(root / "runs"), "--name", "folder"])
    except SystemExit as e:
        assert not e.code, e.code
    return root / "runs" / "video" / "folder", data, cache


def test_folder_of_videos_trains_through_the_disk_cache(folder_run):
    run, data, cache = folder_run
    summary = json.loads((run / "run.json").read_text())["summary"]
    assert summary["epochs_run"] == 2 and 0 <= summary["test_video_acc"] <= 1 and "test_acc" in summary
    assert len(list(cache.glob("*.npy"))) == 32  # every video decoded once, at the run's size, whatever the epochs
    for f in ("report.html", "curves.png", "confusion_matrix.png", "samples.gif", "checkpoints/best.safetensors"):
        assert (run / f).is_file(), f
    assert Image.open(run / "samples.gif").n_frames == 4  # the clips play


def test_eval_reports_clip_and_video_accuracy(folder_run, cli):
    run, _, _ = folder_run
    code, out, err = cli("video", "eval", str(run), "--split", "test", "--eval-clips", "3")
    assert code == 0, err
    m = json.loads((run / "eval-test" / "metrics.json").read_text())
    assert m["videos"] == 8 and m["clips"] == 24 and {"acc", "video_acc", "macro_f1"} <= set(m)
    assert (run / "eval-test" / "confusion_matrix.png").is_file() and (run / "eval-test" / "per_class.csv").read_text().startswith("class,")
    assert "video acc" in out


def test_predict_gives_clips_frames_timeline_and_annotated_video(folder_run, cli, tmp_path):
    run, data, _ = folder_run
    video = sorted((data / "left").glob("*.mp4"))[0]
    code, out, err = cli("video", "predict", str(run), str(video), "--out", str(tmp_path), "--stride", "2")
    assert code == 0, err
    row = json.loads((tmp_path / "predictions.json").read_text())[0]
    assert row["frames"] == 12 and len(row["per_frame"]) == 12 and [c["start"] for c in row["clips"]] == [0, 2, 4, 6, 8]
    assert abs(sum(t["prob"] for t in row["topk"]) - 1) < 1e-4 or len(row["topk"]) < 4
    assert video_info(row["annotated"]).frames == 12 and Path(row["timeline"]).is_file()
    assert (tmp_path / "clips.csv").read_text().count("\n") == 1 + 5


def test_explain_writes_a_spatiotemporal_cam_and_export_checks_onnx(folder_run, cli):
    run, data, _ = folder_run
    video = sorted((data / "up").glob("*.mp4"))[0]
    code, out, err = cli("video", "explain", str(run), str(video))
    assert code == 0, err
    gif = run / "explain" / f"{video.stem}_cam.gif"
    assert Image.open(gif).n_frames == 4 and video_info(run / "explain" / f"{video.stem}_cam.mp4").frames == 4
    code, out, err = cli("video", "export", str(run), "--format", "onnx")
    assert code == 0, err
    meta = json.loads((run / "export" / "export.json").read_text())
    assert meta["input"] == [None, 3, 4, 32, 32] and meta["clip_len"] == 4 and meta["onnx"]["max_abs_diff"] < 1e-4


@pytest.mark.usefixtures("one_thread")
def test_frame_folders_train_a_many_to_many_gru_and_predict_per_frame(tmp_path, cli):
    data = write_moving(tmp_path / "frames", n=16, frames=6, size=32, seed=2, format="frames")
    code, out, err = cli("video", "train", *FAST, "--model", "cnn_gru", "--many-to-many", "--hidden", "8", "--data", str(data),
                         "--epochs", "1", "--cache", "none", "--out", str(tmp_path / "runs"), "--name", "m2m", "--no-report")
    assert code == 0, err
    one = sorted((data / "right").iterdir())[0]
    code, out, err = cli("video", "predict", str(tmp_path / "runs" / "video" / "m2m"), str(one), "--out", str(tmp_path / "p"), "--no-annotate")
    assert code == 0, err
    row = json.loads((tmp_path / "p" / "predictions.json").read_text())[0]
    assert row["frames"] == 6 and len(row["per_frame"]) == 6


def _kth(root: Path, persons=range(1, 26), frames: int = 5) -> Path:
    from vislab.data.video.formats import KTH_ACTIONS

    rng = np.random.default_rng(0)
    for a, action in enumerate(KTH_ACTIONS):
        (root / action).mkdir(parents=True, exist_ok=True)
        for p in persons:
            clip = np.zeros((frames, 16, 16, 3), np.uint8)
            for t in range(frames):
                clip[t, 4:10, (a + t) % 12 : (a + t) % 12 + 4] = 200
            clip = np.clip(clip + rng.integers(0, 20, clip.shape), 0, 255).astype(np.uint8)
            write_video(root / action / f"person{p:02d}_{action}_d1_uncomp.avi", clip, fps=25)
    return root


def test_kth_layout_trains_on_the_standard_subject_split_in_gray(tmp_path, cli):
    kth = _kth(tmp_path / "KTH")
    code, out, err = cli("video", "train", *FAST, "--data", str(kth), "--img-size", "16", "--epochs", "1", "--cache", "none",
                         "--out", str(tmp_path / "runs"), "--name", "kth", "--no-report")
    assert code == 0, err
    assert "(48 train, 48 val, 54 test videos, 6 classes, clips 4 x 16x16x1" in err + out  # persons 8 / 8 / 9 x 6 actions, gray


def _bad(cli, tmp_path, *args: str) -> str:
    code, out, err = cli("video", "train", *FAST, "--epochs", "1", "--cache", "none", "--out", str(tmp_path / "runs"), "--overwrite", *args)
    assert code == 2, (out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def test_bad_inputs_are_one_clear_line(tmp_path, cli):
    short = write_moving(tmp_path / "short", n=8, frames=3, size=16, seed=3)
    assert "expected at least 4 frames for --clip-len 4 --frame-stride 1, got 3 (use --pad loop or --pad repeat)" in _bad(cli, tmp_path, "--data", str(short))
    code, out, err = cli("video", "train", *FAST, "--data", str(short), "--pad", "loop", "--epochs", "1", "--cache", "none", "--no-report",
                         "--out", str(tmp_path / "runs"), "--name", "padded")
    assert code == 0, err

    zero = write_moving(tmp_path / "zero", n=8, frames=6, size=16, seed=3)
    (zero / "left" / "broken.mp4").write_bytes(b"")
    assert "got an empty file (0 bytes)" in _bad(cli, tmp_path, "--data", str(zero))
    (zero / "left" / "broken.mp4").write_text("not a video")
    assert "broken.mp4: expected a readable video" in _bad(cli, tmp_path, "--data", str(zero))

    empty = write_moving(tmp_path / "empty", n=8, frames=6, size=16, seed=3)
    (empty / "jogging").mkdir()
    assert "jogging: expected video files" in _bad(cli, tmp_path, "--data", str(empty))

    kth = _kth(tmp_path / "KTH", persons=[p for p in range(1, 26) if p != 13], frames=2)
    assert "missing person13" in _bad(cli, tmp_path, "--data", str(kth))

    mixed = write_moving(tmp_path / "mixed", n=8, frames=6, size=16, seed=3, format="frames")
    one = sorted((mixed / "left").iterdir())[0]
    Image.new("RGB", (20, 16)).save(sorted(one.iterdir())[2])
    assert "(mixed sizes)" in _bad(cli, tmp_path, "--data", str(mixed), "--img-size", "0")

    assert "--clip-len: expected >= 2 for two_stream" in _bad(cli, tmp_path, "--data", "moving", "--model", "two_stream", "--clip-len", "1")
    assert "expected a video model" in _bad(cli, tmp_path, "--data", "moving", "--model", "resnet18")
    assert "(no such path)" in _bad(cli, tmp_path, "--data", str(tmp_path / "nowhere"))
    assert "did you mean" in _bad(cli, tmp_path, "--data", "movng").lower()


def test_predict_bad_video_is_one_line(folder_run, cli, tmp_path):
    run, _, _ = folder_run
    (tmp_path / "z.mp4").write_bytes(b"")
    code, out, err = cli("video", "predict", str(run), str(tmp_path / "z.mp4"))
    assert code == 2 and "got an empty file (0 bytes)" in err and len(err.strip().splitlines()) == 1, err
    write_video(tmp_path / "short.mp4", np.zeros((2, 32, 32, 3), np.uint8))
    code, out, err = cli("video", "predict", str(run), str(tmp_path / "short.mp4"))
    assert code == 2 and "expected at least 4 frames" in err and "got 2" in err, err
    code, out, err = cli("video", "predict", str(run), str(tmp_path / "short.mp4"), "--pad", "repeat", "--out", str(tmp_path / "p"))
    assert code == 0, err
    assert read_video(tmp_path / "short.mp4").shape[0] == 2


def test_eval_on_other_videos_keeps_the_runs_size_and_maps_classes_by_name(folder_run, cli, tmp_path):
    run, _, _ = folder_run  # trained at 32 px on folders whose classes sort as down, left, right, up
    other = write_moving(tmp_path / "other", n=8, frames=12, size=48, seed=9, classes=("up", "down", "left", "right"))
    code, out, err = cli("video", "eval", str(run), "--data", str(other), "--split", "test", "--out", str(tmp_path / "e"))
    assert code == 0, err
    assert json.loads((tmp_path / "e" / "metrics.json").read_text())["videos"] >= 1
    code, out, err = cli("video", "eval", str(run), "--data", "moving", "--split", "test", "--out", str(tmp_path / "g"))
    assert code == 0, err  # generated classes come as left, right, up, down: the same names, mapped


def test_predict_names_outputs_apart_and_skips_cover_images(folder_run, cli, tmp_path):
    run, data, _ = folder_run
    for side in ("a", "b"):
        (tmp_path / "in" / side).mkdir(parents=True)
        (tmp_path / "in" / side / "clip.mp4").write_bytes(sorted((data / "up").glob("*.mp4"))[0].read_bytes())
    Image.new("RGB", (32, 32)).save(tmp_path / "in" / "a" / "cover.jpg")  # a folder of videos with an image is not a video
    code, out, err = cli("video", "predict", str(run), str(tmp_path / "in"), "--out", str(tmp_path / "p"))
    assert code == 0, err
    rows = json.loads((tmp_path / "p" / "predictions.json").read_text())
    assert len(rows) == 2 and len({r["annotated"] for r in rows}) == 2 and all(Path(r["annotated"]).is_file() for r in rows)
    for bad, msg in ((["--stride", "-2"], "--stride: expected >= 0"), (["--batch-size", "0"], "--batch-size: expected >= 1")):
        code, out, err = cli("video", "predict", str(run), str(tmp_path / "in"), *bad)
        assert code == 2 and msg in err and len(err.strip().splitlines()) == 1, err
    code, out, err = cli("video", "explain", str(run), str(tmp_path / "in"), "--fps", "0")
    assert code == 2 and "--fps: expected > 0" in err, err
