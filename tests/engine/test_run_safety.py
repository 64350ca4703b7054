"""A run folder's safety: unwritable places are one line, a full disk mid-run keeps the last good checkpoint and says
how to resume, one writer per run (a lock), a truncated last checkpoint falls back to the one before, run files get
the user's permissions."""

from __future__ import annotations

import errno
import json
import os
import subprocess
import sys

import pytest

from vislab.engine import checkpoint as ckpt

GAN = ["gan2d", "train", "--synth-count", "512", "--batch-size", "64", "--progress", "off", "--no-tensorboard", "--no-report",
       "--snapshot-every", "0", "--threads", "1"]


@pytest.mark.parametrize("task", ["classify", "gan2d"])
def test_an_unwritable_out_is_one_line_before_training(cli, task):
    code, out, err = cli(task, "train", "--out", "/dev/null/runs", "--epochs", "1")
    assert code == 2 and err.strip() == f"error: --out: expected a folder vislab can write, got '/dev/null/runs/{task}' (Not a directory)"


def test_a_full_disk_mid_run_keeps_the_last_good_checkpoint_and_says_how_to_resume(tmp_path, cli, monkeypatch):
    import safetensors.torch

    real, calls = safetensors.torch.save_file, []

    def full_disk(tensors, path, metadata=None):
        calls.append(path)
        if len(calls) == 3:  # epoch 1: last + best; epoch 2's last: the disk is full
            raise OSError(errno.ENOSPC, "No space left on device", path)
        return real(tensors, path, metadata=metadata)

    monkeypatch.setattr(safetensors.torch, "save_file", full_disk)
    run = tmp_path / "gan2d" / "exp"
    code, out, err = cli(*GAN, "--epochs", "3", "--out", str(tmp_path))
    last_line = err.strip().splitlines()[-1]  # after the progress lines
    assert code == 2 and last_line == (f"error: could not write '{run / 'checkpoints' / 'last.safetensors'}': No space left on device; "
                                       f"the last good checkpoint (epoch 1) is intact in {run / 'checkpoints'}: make room and continue "
                                       f"with `vislab gan2d train --resume {run}`"), err
    _, state = ckpt.load(run / "checkpoints" / "last.safetensors")  # intact and loadable
    assert state["epoch"] == 1 and not list((run / "checkpoints").glob(".*.tmp"))  # no half-written file left
    monkeypatch.setattr(safetensors.torch, "save_file", real)
    code, out, err = cli("gan2d", "train", "--resume", str(run))
    assert code == 0, err
    assert json.loads((run / "checkpoints" / "last.json").read_text())["epoch"] == 3


def test_one_writer_per_run(tmp_path, cli):
    run = tmp_path / "gan2d" / "exp"
    code, _, err = cli(*GAN, "--epochs", "1", "--out", str(tmp_path))
    assert code == 0, err
    assert not (run / ".lock").exists()  # released when the run ends
    (run / ".lock").write_text(json.dumps({"pid": os.getpid(), "host": os.uname().nodename, "started": "now"}))
    before = (run / "checkpoints" / "last.safetensors").read_bytes()
    for args in (["--resume", str(run), "--epochs", "2"], [*GAN[2:], "--out", str(tmp_path), "--name", "exp", "--overwrite"]):
        code, out, err = cli("gan2d", "train", *args)
        assert code == 2 and err.count("\n") == 1 and f"is being written by process {os.getpid()} on" in err, err
        assert (run / "checkpoints" / "last.safetensors").read_bytes() == before and run.is_dir()  # nothing touched
    gone = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True).stdout.strip()
    (run / ".lock").write_text(json.dumps({"pid": int(gone), "host": os.uname().nodename, "started": "then"}))  # a stale lock
    code, out, err = cli("gan2d", "train", "--resume", str(run), "--epochs", "2")
    assert code == 0, err
    assert not (run / ".lock").exists()


def test_a_truncated_last_checkpoint_falls_back_to_the_one_before(tmp_path, cli):
    run = tmp_path / "gan2d" / "exp"
    code, _, err = cli(*GAN, "--epochs", "2", "--out", str(tmp_path))
    assert code == 0, err
    assert ckpt.load(run / "checkpoints" / "previous.safetensors")[1]["epoch"] == 1  # the last two are kept
    last = run / "checkpoints" / "last.safetensors"
    last.write_bytes(last.read_bytes()[: len(last.read_bytes()) // 2])  # cut short
    code, out, err = cli("gan2d", "train", "--resume", str(run), "--epochs", "3")
    assert code == 0, err
    assert "resuming from" in err + out and "previous.safetensors (epoch 1)" in err + out
    hist = json.loads((run / "checkpoints" / "last.json").read_text())["history"]
    assert [int(r["epoch"]) for r in hist] == [1, 2, 3]  # epoch 2 trained again from epoch 1's state


def test_run_files_get_the_users_permissions(tmp_path, cli):
    umask = os.umask(0o022)
    try:
        code, _, err = cli(*GAN, "--epochs", "1", "--out", str(tmp_path))
    finally:
        os.umask(umask)
    assert code == 0, err
    run = tmp_path / "gan2d" / "exp"
    for name in ("config.yaml", "run.json", "metrics.csv", "checkpoints/last.safetensors", "checkpoints/best.json"):
        assert (run / name).stat().st_mode & 0o777 == 0o644, name
