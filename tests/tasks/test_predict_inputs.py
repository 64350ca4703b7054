"""Every task's predict refuses inputs without images in one line, exit 2, and never replaces an earlier result."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v0_1"
OUTPUT = {"classify": "predict/predictions.csv", "segment": "predict/predictions.json", "detect": "predict/detections.json"}


@pytest.mark.parametrize(("task", "size", "channels"), [("classify", 16, 1), ("segment", 16, 3), ("detect", 32, 3)])
def test_a_folder_without_images_is_refused_and_the_earlier_result_stays(tmp_path, cli, task, size, channels, one_thread):
    run = tmp_path / task
    shutil.copytree(FIXTURES / task / "legacy", run)
    a = np.random.default_rng(0).integers(0, 255, (size, size, channels) if channels == 3 else (size, size), dtype=np.uint8)
    Image.fromarray(a).save(tmp_path / "x.png")
    code, _, err = cli(task, "predict", str(run), str(tmp_path / "x.png"))
    assert code == 0, err
    before = (run / OUTPUT[task]).read_bytes()
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("no pictures here")
    code, out, err = cli(task, "predict", str(run), str(tmp_path / "empty"))
    assert code == 2 and err.count("\n") == 1 and f"in folder '{tmp_path / 'empty'}', got none" in err, err
    assert (run / OUTPUT[task]).read_bytes() == before


def test_every_image_unreadable_is_refused_even_when_skipping(tmp_path, cli):
    run = tmp_path / "classify"
    shutil.copytree(FIXTURES / "classify" / "legacy", run)
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "a.png").write_text("not a png")
    (run / "predict").mkdir()
    (run / "predict" / "predictions.csv").write_text("earlier\n")
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "vislab", "classify", "predict", str(run), str(tmp_path / "bad"), "--bad-images", "skip"],
                       capture_output=True, text=True, timeout=120)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines == [f"warning: skipped unreadable image {tmp_path / 'bad' / 'a.png'}",  # a warning is one line too
                                           f"error: predict: expected at least one readable image, got none of the 1 input(s) ({tmp_path / 'bad' / 'a.png'} ...)"]
    assert (run / "predict" / "predictions.csv").read_text() == "earlier\n"
