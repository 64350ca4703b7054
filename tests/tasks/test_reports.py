"""Every task writes the report the README promises: report.html with its pictures embedded."""

from __future__ import annotations

import re

import pytest

RUNS = {
    "segment": (["--synth-count", "64", "--img-size", "16", "--width", "4", "--depth", "2", "--epochs", "2"],
                ["Learning curves", "Pixel confusion matrix (test)", "Per-class IoU and Dice (test)", "Samples: image | truth | prediction"],
                ["curves.png", "confusion_matrix.png", "samples.png", "per_class.csv"]),
    "detect": (["--synth-count", "80", "--img-size", "32", "--width", "4", "--epochs", "2"],
               ["Learning curves", "Best checkpoint on the validation split (COCO)", "Per-class AP", "Precision-recall curves (IoU 0.5)",
                "Detections by class", "Sample predictions"],
               ["curves.png", "samples.png", "val_confusion_matrix.png", "val_pr_curves.png", "val_metrics.json"]),
}


@pytest.mark.parametrize("task", list(RUNS))
def test_report_html_with_the_tasks_pictures(tmp_path, cli, task, one_thread):
    args, headings, files = RUNS[task]
    code, out, err = cli(task, "train", *args, "--out", str(tmp_path), "--progress", "off", "--no-tensorboard")
    assert code == 0, err
    run = tmp_path / task / "exp"
    page = (run / "report.html").read_text()
    found = re.findall(r"<h2>(.*?)</h2>", page)
    for h in ["Summary", *headings, "Epochs", "Environment", "Config"]:
        assert any(f.startswith(h.replace("&", "&amp;").replace("|", "|")) for f in found), (h, found)
    assert page.count("data:image/png;base64,") >= len(headings) - (1 if task == "segment" else 2)  # tables are not pictures
    for name in files:
        assert (run / name).stat().st_size > 100, name
        assert f"  {run / name}" in out  # listed when train is done
    assert "-1" not in re.sub(r"<pre>.*?</pre>", "", page.split("<h2>Epochs</h2>")[0], flags=re.S)  # no COCO sentinel in the tables
