"""``vislab tune``: a tiny Optuna study on digits completes, resumes after SIGKILL, records pruned trials."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

pytest.importorskip("optuna")

import optuna
from optuna.trial import TrialState

from vislab.core.errors import ConfigError
from vislab.recipes import tune as T
from vislab.engine.launch import resolve_run_config
from vislab.tasks import classify

BASE = {"data": "digits", "img_size": 16, "epochs": 2, "threads": 1, "val_split": 0.15}
SPACE = {
    "lr": {"type": "float", "low": 1e-3, "high": 0.3, "log": True},
    "optimizer": {"type": "categorical", "choices": ["sgd", "adamw"]},
    "batch_size": {"type": "int", "low": 32, "high": 64, "step": 32},
}


def spec(tmp_path: Path, **kw) -> dict:
    return {"base": BASE, "space": SPACE, "metric": "val_acc", "trials": 4, "pruner": "none", "out": str(tmp_path), "name": "s", **kw}


def load(tmp_path: Path, name: str = "s") -> optuna.Study:
    return optuna.load_study(study_name=name, storage=f"sqlite:///{tmp_path / 'tune' / name / 'study.db'}")


def n_finished(study: optuna.Study) -> int:
    return len(study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED)))


def test_study_completes_and_best_yaml_trains(tmp_path):
    res = T.tune(T.parse_spec(spec(tmp_path, pruner="median")), log=lambda _: None)
    d = tmp_path / "tune" / "s"
    assert res.finished == 4 and n_finished(load(tmp_path)) == 4
    assert sorted(p.name for p in (d / "trials").iterdir()) == ["0", "1", "2", "3"]
    assert (d / "history.png").stat().st_size > 1000 and (d / "study.html").is_file()
    assert res.best_value is not None and 0.5 < res.best_value <= 1
    cfg = resolve_run_config(classify.ClassifyConfig, str(d / "best.yaml"), {})
    assert cfg.train.lr == pytest.approx(res.best_params["lr"]) and cfg.train.optimizer == res.best_params["optimizer"]
    assert cfg.data.batch_size == res.best_params["batch_size"] and cfg.data.img_size == 16
    assert cfg.run.out == "runs" and cfg.run.report  # a normal run, not a quiet trial
    rows = list(csv.DictReader((d / "trials.csv").open()))
    assert [r["state"] for r in rows].count("COMPLETE") + [r["state"] for r in rows].count("PRUNED") == 4


def _cli(tmp_path: Path, trials: int) -> list[str]:
    return [sys.executable, "-m", "vislab", "tune", str(tmp_path / "s.yaml"), "--out", str(tmp_path), "--trials", str(trials)]


def test_killed_study_resumes_to_exact_count(tmp_path):
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({k: v for k, v in spec(tmp_path).items() if k not in ("out", "name")}))
    proc = subprocess.Popen(_cli(tmp_path, 4), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env={**os.environ, "OMP_NUM_THREADS": "1"})
    trials_csv = tmp_path / "tune" / "s" / "trials.csv"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if trials_csv.exists() and sum(r in ("COMPLETE", "PRUNED") for r in trials_csv.read_text().split(",")) >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"study ended before it could be killed: {proc.stderr.read().decode()[-500:]}"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done_before = n_finished(load(tmp_path))
    assert 2 <= done_before < 4
    out = subprocess.run(_cli(tmp_path, 4), check=False, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-800:]
    assert "resuming study" in out.stdout
    study = load(tmp_path)
    assert n_finished(study) == 4
    assert all(t.state != TrialState.RUNNING for t in study.get_trials())  # the killed trial is marked FAIL
    assert (tmp_path / "tune" / "s" / "best.yaml").is_file()


def test_threshold_pruner_records_pruned_trials(tmp_path):
    res = T.tune(T.parse_spec(spec(tmp_path, trials=2, pruner={"type": "threshold", "lower": 0.999}, base={**BASE, "epochs": 3})),
                 log=lambda _: None)
    study = load(tmp_path)
    pruned = study.get_trials(states=(TrialState.PRUNED,))
    assert res.pruned == 2 and len(pruned) == 2 and all(t.last_step == 1 for t in pruned)  # stopped after epoch 1 of 3
    assert res.best_trial is None and not (tmp_path / "tune" / "s" / "best.yaml").exists()
    assert (tmp_path / "tune" / "s" / "study.html").is_file()


@pytest.mark.parametrize(
    ("bad", "match"),
    [
        ({"base": {**BASE, "epohcs": 2}}, "did you mean 'epochs'"),
        ({"space": {"lrr": {"type": "float", "low": 0.1, "high": 1}}}, "did you mean 'lr'"),
        ({"space": {"optimizer": {"type": "categorical", "choices": ["sgd", "sgdd"]}}}, "expected one of sgd, adam, adamw"),
        ({"space": {"lr": {"type": "flaot", "low": 0.1, "high": 1}}}, "did you mean 'float'"),
        ({"space": {"lr": {"type": "float", "low": 1, "high": 0.1}}}, "expected low < high"),
        ({"pruner": {"type": "threshold", "lowr": 0.5}}, "did you mean 'lower'"),
        ({"pruner": "medain"}, "did you mean 'median'"),
        ({"trails": 3}, "did you mean 'trials'"),
    ],
)
def test_bad_specs_raise_config_error(tmp_path, bad, match):
    with pytest.raises(ConfigError, match=match):
        T.parse_spec(spec(tmp_path, **bad))


def test_cli_bad_key_one_line_exit_2(tmp_path, capsys):
    from vislab.cli.main import main

    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({"base": {"lrr": 0.1}, "space": SPACE}))
    with pytest.raises(SystemExit) as e:
        main(["tune", str(tmp_path / "bad.yaml"), "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert e.value.code == 2 and err.strip().count("\n") == 0 and "did you mean 'lr'" in err


@pytest.mark.parametrize(("task", "base", "space", "monitor"), [
    ("segment", {"synth_count": 64, "img_size": 16, "width": 4, "depth": 2, "epochs": 1, "batch_size": 16, "threads": 1},
     {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}, "loss": {"type": "categorical", "choices": ["ce", "ce+dice"]}}, "val_miou"),
    ("detect", {"synth_count": 48, "img_size": 32, "width": 4, "epochs": 1, "batch_size": 16, "threads": 1},
     {"lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}, "nms_iou": {"type": "float", "low": 0.4, "high": 0.7}}, "val_map"),
])
def test_three_trial_study_of_another_task(tmp_path, cli, task, base, space, monitor):
    """Any task's config fields can be searched; the metric defaults to the task's monitor; best.yaml retrains it."""
    (tmp_path / "s.yaml").write_text(yaml.safe_dump({"task": task, "base": base, "space": space, "trials": 3, "pruner": "none"}))
    code, out, err = cli("tune", str(tmp_path / "s.yaml"), "--out", str(tmp_path))
    assert code == 0, err
    d = tmp_path / "tune" / "s"
    study = load(tmp_path)
    assert n_finished(study) == 3 and all(t.value is not None for t in study.get_trials(states=(TrialState.COMPLETE,)))
    assert f"retrain: vislab {task} train --config" in out and f"best trial {study.best_trial.number}: {monitor}" in out
    assert {p.name for p in (d / "trials").iterdir()} == {"0", "1", "2"}
    assert all((d / "trials" / str(i) / "checkpoints" / "best.safetensors").is_file() for i in range(3))
    from vislab.tasks import get_spec

    cfg = resolve_run_config(get_spec(task).config, str(d / "best.yaml"), {})
    assert cfg.train.lr == pytest.approx(study.best_params["lr"]) and cfg.data.synth_count == base["synth_count"]
    code, out, err = cli("tune", str(tmp_path / "s.yaml"), "--out", str(tmp_path), "--task", "classify")
    assert code == 2 and "unknown config key" in err  # the base is checked against the task searched
