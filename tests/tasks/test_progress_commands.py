"""Every task's commands over many inputs show progress: lines with count and ETA off a terminal (here every
advance, LINE_EVERY = 0), nothing with --progress off."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislab.core import progress as P

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v0_1"


def _images(folder: Path, n: int, size: int, channels: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(n):
        a = rng.integers(0, 255, (size, size, channels) if channels == 3 else (size, size), dtype=np.uint8)
        Image.fromarray(a).save(folder / f"im{i}.png")
    return folder


@pytest.mark.parametrize(("task", "size", "channels", "extra"), [("classify", 16, 1, ["--batch-size", "2"]), ("segment", 16, 3, []), ("detect", 32, 3, [])])
def test_predict_and_eval_report_progress(tmp_path, cli, monkeypatch, task, size, channels, extra, one_thread):
    monkeypatch.setattr(P, "LINE_EVERY", 0.0)
    run = tmp_path / task
    shutil.copytree(FIXTURES / task / "legacy", run)
    folder = _images(tmp_path / "in", 5, size, channels)
    code, out, err = cli(task, "predict", str(run), str(folder), *extra)
    assert code == 0, err
    lines = [ln for ln in err.splitlines() if ln.startswith("predict: ")]
    assert lines and lines[-1].startswith("predict: 5/5 images") and "eta 0:00" in lines[-1], err
    code, out, err = cli(task, "predict", str(run), str(folder), *extra, "--progress", "off")
    assert code == 0 and "predict:" not in err, err
    split = "val" if task == "detect" else "test"
    code, out, err = cli(task, "eval", str(run), "--split", split)
    assert code == 0, err
    evals = [ln for ln in err.splitlines() if ln.startswith(f"eval {split}: ")]
    n = int(evals[-1].split()[2].split("/")[1])
    assert evals[-1].startswith(f"eval {split}: {n}/{n} images") and n > 0, err


def test_export_and_explain_report_progress(tmp_path, cli, monkeypatch, one_thread):
    monkeypatch.setattr(P, "LINE_EVERY", 0.0)
    run = tmp_path / "segment"
    shutil.copytree(FIXTURES / "segment" / "legacy", run)
    code, out, err = cli("segment", "export", str(run), "--format", "torchscript")
    assert code == 0 and "export (and check): 1/1 formats" in err, err
    folder = _images(tmp_path / "in", 2, 16, 3)
    code, out, err = cli("segment", "explain", str(run), str(folder), "--methods", "eigencam")
    assert code == 0 and "explain: 2/2 images" in err, err


def test_image_apply_reports_progress(tmp_path, cli, monkeypatch):
    monkeypatch.setattr(P, "LINE_EVERY", 0.0)
    folder = _images(tmp_path / "in", 3, 8, 3)
    code, out, err = cli("image", "apply", str(folder), "--op", "sobel", "-o", str(tmp_path / "out"))
    assert code == 0 and "apply: 3/3 images" in err and len(list((tmp_path / "out").glob("*.png"))) == 3, err
