"""The classify CLI end to end, and every bad input getting one clear line and exit code 2."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from PIL import Image

QUIET = ["--progress", "off", "--no-tensorboard", "--no-report"]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One tiny digits run shared by the eval / predict / export tests."""
    from vislab.cli.main import main

    out = tmp_path_factory.mktemp("runs")
    try:
        main(["classify", "train", "--data", "digits", "--img-size", "16", "--epochs", "2", "--out", str(out), "--name", "t", *QUIET])
    except SystemExit as e:
        assert e.code in (0, None)
    return out / "classify" / "t"


def one_error_line(code: int, err: str, pattern: str) -> None:
    assert code == 2, err
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert "Traceback" not in err
    assert pattern in lines[-1], lines[-1]


def test_help_lists_tasks_and_modes(cli):
    code, out, _ = cli("--help")
    assert code == 0 and "classify" in out and "train | eval | predict | explain | export" in out and "demo" in out
    assert "image" in out and "models" in out
    code, out, _ = cli("classify", "train", "--help")
    assert code == 0 and "--lr" in out and "--precision" in out and "--config" in out and "--resume" in out
    code, out, _ = cli("--version")
    assert code == 0 and "vislab" in out


def test_train_eval_predict_export(trained, cli, tmp_path):
    assert (trained / "checkpoints" / "best.safetensors").exists()
    code, out, err = cli("classify", "eval", str(trained), "--split", "test")
    assert code == 0, err
    assert "acc" in out and (trained / "eval-test" / "confusion_matrix.png").exists()
    per = list(csv.DictReader(open(trained / "eval-test" / "per_class.csv")))
    assert len(per) == 10 and {"precision", "recall", "f1", "support"} <= set(per[0])

    imgs = tmp_path / "imgs"
    imgs.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 24), 40 * i, np.uint8)).save(imgs / f"im{i}.png")
    Image.fromarray(np.zeros((8, 8, 4), np.uint8), "RGBA").save(imgs / "rgba.png")  # any mode is converted
    code, out, err = cli("classify", "predict", str(trained), str(imgs), "--topk", "3", "--out", str(tmp_path / "p.json"), "--annotate")
    assert code == 0, err
    rows = json.loads((tmp_path / "p.json").read_text())
    assert len(rows) == 4 and all(len(r["topk"]) == 3 for r in rows)
    assert all(abs(sum(t["prob"] for t in r["topk"])) <= 1 + 1e-6 for r in rows)
    assert len(list((tmp_path / "annotated").glob("*.png"))) == 4 and f"annotated images: {tmp_path / 'annotated'}" in out
    code, out, err = cli("classify", "predict", str(trained), str(imgs / "im*.png"), "--out", str(tmp_path / "p.csv"))
    assert code == 0, err
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 4  # header + 3 matched by the glob

    code, out, err = cli("classify", "export", str(trained), "--out", str(tmp_path / "exp"))
    assert code == 0, err
    meta = json.loads((tmp_path / "exp" / "export.json").read_text())
    assert meta["onnx"]["max_abs_diff"] < 1e-4 and meta["torchscript"]["max_abs_diff"] < 1e-4


def test_explain(trained, cli, tmp_path):
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(tmp_path / "x.png")
    code, out, err = cli("classify", "explain", str(trained), str(tmp_path / "x.png"), "--methods", "gradcam,eigencam,filters",
                         "--target-class", "3", "--out", str(tmp_path / "ex"))
    assert code == 0, err
    assert (tmp_path / "ex" / "x_maps.png").stat().st_size > 1000 and (tmp_path / "ex" / "filters.png").exists()
    code, _, err = cli("classify", "explain", str(trained), str(tmp_path / "x.png"), "--methods", "gradcamm")
    one_error_line(code, err, "gradcam")


def test_exported_onnx_matches_eager(trained, tmp_path):
    """Independent of the exporter's own check: run the ONNX file and compare with the checkpoint's model."""
    import onnxruntime as ort
    import torch

    from vislab.engine.checkpoint import load_model
    from vislab.tasks.classify import ExportConfig, export

    export(ExportConfig(checkpoint=str(trained), format="onnx", out=str(tmp_path)))
    model, _ = load_model(trained)
    x = torch.randn(5, 1, 16, 16)
    sess = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    np.testing.assert_allclose(sess.run(None, {"images": x.numpy()})[0], model(x).detach().numpy(), atol=1e-4)


def test_config_file_with_override(tmp_path, cli):
    cfg = tmp_path / "run.yaml"
    cfg.write_text("data: {data: digits, img_size: 16, limit: 200}\ntrain: {epochs: 5, lr: 0.01}\nmodel: lenet5\n")
    code, out, err = cli("classify", "train", "--config", str(cfg), "--epochs", "1", "--out", str(tmp_path), *QUIET)
    assert code == 0, err
    import yaml

    saved = yaml.safe_load((tmp_path / "classify" / "exp" / "config.yaml").read_text())
    assert saved["train"]["epochs"] == 1 and saved["train"]["lr"] == 0.01 and saved["model"]["model"] == "lenet5"
    assert saved["data"]["img_size"] == 16


# ---------------------------------------------------------------------------- bad input
def test_missing_data_path(cli, tmp_path):
    one_error_line(*cli("classify", "train", "--data", str(tmp_path / "nope"), "--out", str(tmp_path))[::2], "not found")


def test_empty_class_folder(cli, tmp_path):
    (tmp_path / "d" / "cats").mkdir(parents=True)
    (tmp_path / "d" / "dogs").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "d" / "cats" / "a.png")
    code, _, err = cli("classify", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path))
    one_error_line(code, err, "dogs")


def test_corrupt_image(cli, tmp_path):
    for c in ("a", "b"):
        (tmp_path / "d" / c).mkdir(parents=True)
        for i in range(4):
            Image.fromarray(np.full((8, 8, 3), i * 30, np.uint8)).save(tmp_path / "d" / c / f"{i}.png")
    (tmp_path / "d" / "b" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    code, _, err = cli("classify", "train", "--data", str(tmp_path / "d"), "--out", str(tmp_path))
    one_error_line(code, err, "broken.png")


def test_label_out_of_range(cli, tmp_path):
    for i in range(4):
        Image.fromarray(np.full((8, 8, 3), i * 30, np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "classes.txt").write_text("cat\ndog\n")  # two classes, so label 7 is out of range
    (tmp_path / "labels.csv").write_text("path,label\n0.png,0\n1.png,1\n2.png,0\n3.png,7\n")
    code, _, err = cli("classify", "train", "--data", str(tmp_path / "labels.csv"), "--format", "csv", "--out", str(tmp_path))
    one_error_line(code, err, "7")


def test_input_too_small_for_model(cli, tmp_path):
    code, _, err = cli("classify", "train", "--model", "lenet5", "--img-size", "8", "--out", str(tmp_path))
    one_error_line(code, err, "got 1x8x8 images")


def test_unknown_model(cli, tmp_path):
    code, _, err = cli("classify", "train", "--model", "no_such_net", "--out", str(tmp_path))
    one_error_line(code, err, "unknown model 'no_such_net'")


def test_unknown_option(cli):
    code, _, err = cli("classify", "train", "--epochz", "1")
    one_error_line(code, err, "--epochz")
    assert "--epochs" in err  # click suggests the right one


def test_unknown_key_in_config_file(cli, tmp_path):
    (tmp_path / "c.yaml").write_text("train: {lrr: 0.1}\n")
    code, _, err = cli("classify", "train", "--config", str(tmp_path / "c.yaml"))
    one_error_line(code, err, "did you mean 'lr'")


def test_checkpoint_from_other_data(cli, trained, tmp_path):
    """A 10-class digits checkpoint evaluated on 4-class shapes: refused, naming both class counts."""
    code, _, err = cli("classify", "eval", str(trained), "--data", "shapes")
    one_error_line(code, err, "expected the checkpoint's 10 classes")


def test_not_a_checkpoint(cli, tmp_path):
    (tmp_path / "x.safetensors").write_bytes(b"junk")
    one_error_line(*cli("classify", "eval", str(tmp_path / "x.safetensors"))[::2], "x.safetensors")
    one_error_line(*cli("classify", "predict", str(tmp_path / "missing"), "a.png")[::2], "not found")


def test_existing_run_name_is_not_overwritten(cli, trained):
    code, _, err = cli("classify", "train", "--out", str(trained.parent.parent), "--name", "t", *QUIET)
    one_error_line(code, err, "already holds a run")


def test_debug_shows_traceback(tmp_path):
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "vislab", "--debug", "classify", "train", "--data", str(tmp_path / "nope")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "Traceback" in r.stderr and "DataError" in r.stderr
