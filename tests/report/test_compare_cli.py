"""`vislab compare runs/classify/*` (its own --help example) works on a runs tree with other things in it."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "runs_v0_1" / "classify" / "legacy"


def test_compare_a_glob_of_runs(tmp_path, cli):
    root = tmp_path / "runs" / "classify"
    for name in ("a", "b"):
        shutil.copytree(FIXTURE, root / name)
    (root / "notes.txt").write_text("not a run")
    (root / "scratch").mkdir()
    import warnings

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        code, out, err = cli("compare", *sorted(str(p) for p in root.iterdir()))
    assert code == 0, err
    assert sorted(str(w.message) for w in caught if "left out" in str(w.message)) == [
        f"compare: left out '{root / 'notes.txt'}' (not a run folder: no run.json)", f"compare: left out '{root / 'scratch'}' (not a run folder: no run.json)"]
    dest = tmp_path / "runs" / "compare" / "classify"  # beside the task's runs, not among them
    assert [r["run"] for r in json.loads((dest / "compare.json").read_text())] == ["a", "b"]
    code, out, err = cli("compare", str(root / "notes.txt"), str(root / "scratch"))
    assert code == 2 and "expected run folders with run.json, got none among 2 paths" in err
