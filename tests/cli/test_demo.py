"""`vislab demo` (what `make demo` runs): trains, evaluates, predicts, writes the report and prints its wall time."""

from __future__ import annotations

import re


def test_demo_end_to_end_prints_its_wall_time(tmp_path, cli, one_thread):
    code, out, err = cli("demo", "--out", str(tmp_path), "--epochs", "4")  # the default is 8; 4 already passes the bar
    assert code == 0, err
    m = re.search(r"test accuracy (\d\.\d+) \(bar 0\.95\) .* wall time (\d+) s", out)
    assert m and float(m.group(1)) >= 0.95, out
    run = tmp_path / "classify" / "demo"
    for name in ["report.html", "curves.png", "eval-test/confusion_matrix.png", "predict/predictions.csv", "checkpoints/best.safetensors"]:
        assert (run / name).stat().st_size > 0, name
    assert len(list((run / "predict" / "annotated").glob("*.png"))) == 8
