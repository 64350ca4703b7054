"""An ArcFace run through the engine: a killed run resumes to identical weights (the loss's class weights
included), and 2-process DDP equals 1 process (the loss sees the gathered global batch)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vislab.core.config import from_dict
from vislab.engine import checkpoint as ckpt
from vislab.tasks import embed


def tensors(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load(run / "checkpoints" / "last.safetensors")[0]


def _cmd(out: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "vislab", "embed", "train", "--epochs", "4", "--synth-classes", "24", "--synth-count", "384", "--width", "8",
            "--embed-dim", "32", "--batch-size", "32", "--threads", "1", "--out", str(out), "--name", name, "--progress", "off",
            "--no-tensorboard", "--no-report", "--seed", "2"]


def test_killed_arcface_run_resumes_to_identical_weights(tmp_path, kill_and_resume):
    ref = subprocess.run(_cmd(tmp_path, "ref"), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    killed_at = kill_and_resume(_cmd(tmp_path, "killed"), tmp_path / "embed" / "killed", "embed")
    assert 2 <= killed_at < 4, "the kill must land before the run finished"
    a, b = tensors(tmp_path / "embed" / "ref"), tensors(tmp_path / "embed" / "killed")
    assert a.keys() == b.keys() and "model.criterion.pml.W" in a  # ArcFace's class weights are in the checkpoint
    for k in a:
        assert torch.equal(a[k], b[k]), k


@pytest.mark.parametrize("loss", ["arcface", "triplet"])
def test_ddp_two_processes_equal_one(tmp_path, loss):
    """ArcFace (class weights in the loss, synchronised like the model's) and triplet with semi-hard mining (triplets
    across the processes' shares: only the gathered batch has them). LeNet-5 and no batch norm in the head:
    per-process BatchNorm statistics differ from one process's, and torch's SyncBatchNorm needs CUDA."""
    kw = {"out": str(tmp_path), "epochs": 2, "synth_classes": 24, "synth_count": 384, "model": "lenet5", "bn": False, "embed_dim": 32,
          "batch_size": 32, "threads": 1, "precision": "fp32", "progress": "off", "tensorboard": False, "report": False, "loss": loss}
    one = embed.train(from_dict(embed.EmbedConfig, {**kw, "name": "one"}))
    two = embed.train(from_dict(embed.EmbedConfig, {**kw, "name": "two", "nproc": 2}))
    a, b = tensors(one), tensors(two)
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("model.") and a[k].is_floating_point():
            torch.testing.assert_close(a[k], b[k], atol=1e-5, rtol=0, msg=k)
