"""End to end through the CLI: generate, convert, validate, train (a few steps), eval, predict (image + video), export; bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_data_convert_and_validate(cli, tmp_path):
    code, out, err = cli("data", "generate-detection", str(tmp_path / "gen"), "--count", "6", "--size", "40")
    assert code == 0, err
    code, out, err = cli("data", "convert", str(tmp_path / "gen" / "annotations.json"), str(tmp_path / "y"), "--to", "yolo")
    assert code == 0 and "converted 6 images" in out, err
    code, out, _ = cli("data", "validate", str(tmp_path / "y" / "data.yaml"))
    assert code == 0 and "no problems" in out
    d = json.loads((tmp_path / "gen" / "annotations.json").read_text())
    d["annotations"][0]["bbox"][0] = 39.0  # now runs past the right edge
    bad = tmp_path / "gen" / "bad.json"
    bad.write_text(json.dumps(d))
    name = next(im["file_name"] for im in d["images"] if im["id"] == d["annotations"][0]["image_id"])
    code, out, _ = cli("data", "validate", str(bad))
    assert code == 1 and name in out and "outside" in out
    code, _, err = cli("detect", "train", "--data", str(bad), "--out", str(tmp_path / "runs"), "--progress", "off")
    assert code == 2 and name in err and "expected valid annotations" in err


def test_train_eval_predict_export(cli, tmp_path):
    import cv2

    assert cli("data", "generate-detection", str(tmp_path / "gen"), "--count", "20", "--size", "48", "--objects", "0,2")[0] == 0
    code, out, err = cli("detect", "train", "--data", str(tmp_path / "gen" / "annotations.json"), "--img-size", "48", "--epochs", "1",
                         "--batch-size", "8", "--width", "8", "--out", str(tmp_path / "runs"), "--name", "t", "--progress", "off",
                         "--no-tensorboard")
    assert code == 0, err
    run = tmp_path / "runs" / "detect" / "t"
    assert (run / "checkpoints" / "best.safetensors").exists() and (run / "val_pr_curves.png").exists()
    code, out, err = cli("detect", "eval", str(run))
    assert code == 0 and "map50" in out, err
    assert json.loads((run / "eval-val" / "val_metrics.json").read_text())["n_images"] == 4
    video = tmp_path / "clip.mp4"
    w = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"mp4v"), 5, (64, 48))
    for _ in range(3):
        w.write(np.full((48, 64, 3), 128, np.uint8))
    w.release()
    img = min((tmp_path / "gen" / "images").glob("*.png"))
    code, out, err = cli("detect", "predict", str(run), str(img), str(video), "--score-thresh", "0.0", "--out", str(tmp_path / "pred"))
    assert code == 0, err
    dets = json.loads((tmp_path / "pred" / "detections.json").read_text())
    assert {d["file_name"] for d in dets} == {str(img), str(video)} and {d.get("frame") for d in dets if d["file_name"] == str(video)} == {0, 1, 2}
    assert (tmp_path / "pred" / f"{img.stem}_boxes.png").exists() and (tmp_path / "pred" / "clip_boxes.mp4").exists()
    import av

    with av.open(str(tmp_path / "pred" / "clip_boxes.mp4")) as c:  # H.264 (browsers play it), the input's 3 frames at its 5 fps
        s = c.streams.video[0]
        assert (s.codec_context.name, s.frames, float(s.average_rate)) == ("h264", 3, 5.0)
    code, out, err = cli("detect", "export", str(run))
    assert code == 0, err
    assert "outputs detections" in out and float(out.split("max |diff| vs eager ")[1].split(")")[0]) < 1e-3
    code, out, err = cli("detect", "export", str(run), "--no-postprocess", "--out", str(tmp_path / "dense.onnx"))
    assert code == 0 and "outputs boxes, scores" in out, err


def test_explain_a_box(cli, tmp_path):
    from vislab.core import config as C
    from vislab.data.detect import shapes_detection, write_coco
    from vislab.tasks.detect import DetectConfig, train

    write_coco(shapes_detection(12, 2, 48, seed=0, objects=(1, 2)), tmp_path / "gen")
    run = train(C.from_dict(DetectConfig, {"data": str(tmp_path / "gen"), "img_size": 48, "epochs": 1, "batch_size": 8, "width": 8,
                                           "out": str(tmp_path / "runs"), "progress": "off", "tensorboard": False, "report": False}))
    img = min((tmp_path / "gen" / "images").glob("*.png"))
    code, _out, err = cli("detect", "explain", str(run), str(img), "--score-thresh", "0", "--methods", "eigencam,gradcam")
    assert code == 0, err
    assert (run / "explain" / f"{img.stem}_explain.png").exists()
    code, _, err = cli("detect", "explain", str(run), str(img), "--box", "500", "--score-thresh", "0.99")
    assert code == 2 and "--box 500" in err


def test_generate_digits_detection(cli, tmp_path):
    code, out, err = cli("data", "generate-detection", str(tmp_path / "d"), "--kind", "digits", "--count", "4", "--classes", "10", "--to", "yolo")
    assert code == 0 and "wrote 4 images" in out, err
    assert "no problems" in cli("data", "validate", str(tmp_path / "d" / "data.yaml"))[1]
    import yaml

    text = (tmp_path / "d" / "data.yaml").read_text()
    # write_yolo dumps names as {index: class name}; digit class names are the strings "0".."9" (quoted: '9', not 9)
    assert yaml.safe_load(text)["names"] == {i: str(i) for i in range(10)}, text
    assert "  9: '9'" in text.splitlines(), text
    code, _, err = cli("data", "generate-detection", str(tmp_path / "e"), "--kind", "digits", "--classes", "11")
    assert code == 2 and "expected 1..10 for digits, got 11" in err


def test_train_from_weights_of_another_run(cli, tmp_path):
    """--weights: a run on 3 shape classes starts a run on 2 digit classes; everything but the class head loads."""
    common = ["--img-size", "48", "--epochs", "1", "--batch-size", "16", "--width", "8", "--synth-count", "48", "--out", str(tmp_path / "runs"),
              "--progress", "off", "--no-tensorboard", "--no-report"]
    assert cli("detect", "train", "--data", "shapes", "--name", "a", *common)[0] == 0
    code, out, err = cli("detect", "train", "--data", "digits", "--synth-classes", "2", "--name", "b", "--weights", str(tmp_path / "runs" / "detect" / "a"), *common)
    assert code == 0, err
    state = json.loads((tmp_path / "runs" / "detect" / "b" / "checkpoints" / "last.json").read_text())
    rep = state["weights"]
    assert state["classes"] == ["0", "1"] and rep["loaded"] > 50, rep
    assert sorted(rep["missing"]) == ["cls.bias", "cls.weight"] and all(r.startswith("cls.") for r in rep["reshaped"]), rep
    code, _, err = cli("detect", "train", "--data", "digits", "--synth-classes", "12", "--name", "c", *common)
    assert code == 2 and "expected 1..10 for digits, got 12" in err


def test_explain_refuses_a_model_without_a_pyramid_in_one_line(cli, tmp_path):
    common = ["--model", "localizer", "--objects", "1,1", "--synth-count", "32", "--epochs", "1", "--out", str(tmp_path / "runs"), "--name", "l",
              "--progress", "off", "--no-tensorboard", "--no-report"]
    assert cli("detect", "train", *common)[0] == 0
    assert cli("data", "generate-detection", str(tmp_path / "g"), "--count", "1", "--objects", "1,1")[0] == 0
    code, _, err = cli("detect", "explain", str(tmp_path / "runs" / "detect" / "l"), str(tmp_path / "g" / "images" / "000000.png"))
    assert code == 2 and "expected a detector with dense outputs on a feature pyramid (yolo_tiny), got localizer" in err, err
    assert len(err.strip().splitlines()) == 1
