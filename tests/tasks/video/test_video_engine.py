"""A video model in the shared engine: a killed run resumes to the weights of an uninterrupted one (the clips each
video gives depend only on (seed, epoch, video)), and 2-process DDP takes exactly the steps of one process."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from vislab.core.config import from_dict
from vislab.engine import checkpoint as ckpt
from vislab.tasks import video

QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "cache": "none"}


def tensors(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load(run / "checkpoints" / "last.safetensors")[0]


def _cmd(out: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "vislab", "video", "train", "--model", "cnn_gru", "--width", "4", "--hidden", "8", "--data", "moving",
            "--n-videos", "160", "--clip-len", "6", "--augment", "light", "--batch-size", "8", "--epochs", "4", "--threads", "1",
            "--precision", "fp32", "--cache", "none", "--out", str(out), "--name", name, "--progress", "off", "--no-tensorboard", "--no-report",
            "--seed", "3"]


def test_killed_video_run_resumes_to_the_uninterrupted_weights(tmp_path, kill_and_resume):
    ref = subprocess.run(_cmd(tmp_path, "ref"), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    killed_at = kill_and_resume(_cmd(tmp_path, "killed"), tmp_path / "video" / "killed", "video")
    assert 2 <= killed_at < 4, "the kill must land before the run finished"
    a, b = tensors(tmp_path / "video" / "ref"), tensors(tmp_path / "video" / "killed")
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k


def test_ddp_two_processes_take_the_steps_of_one(tmp_path):
    # a CNN + GRU on LeNet-5 frames: no BatchNorm, whose batch statistics are per process without --sync-bn (CUDA only)
    kw = dict(QUIET, model="cnn_gru", backbone="lenet5", hidden=8, data="moving", n_videos=48, clip_len=4, batch_size=8, epochs=1,
              augment="light", out=str(tmp_path), optimizer="sgd", lr=0.05, weight_decay=0.0)
    one = video.train(from_dict(video.VideoConfig, {**kw, "name": "one"}))
    two = video.train(from_dict(video.VideoConfig, {**kw, "name": "two", "nproc": 2}))
    a, b = tensors(one), tensors(two)
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith("model."):
            torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=0, msg=k)


def test_ddp_two_stream_mid_fusion_trains_every_head_like_one_process(tmp_path):
    kw = dict(QUIET, model="two_stream", fusion="mid", backbone="lenet5", data="moving", n_videos=32, clip_len=4, batch_size=8, epochs=1,
              flow="gt", out=str(tmp_path), optimizer="sgd", lr=0.05, weight_decay=0.0)
    one = video.train(from_dict(video.VideoConfig, {**kw, "name": "one"}))
    two = video.train(from_dict(video.VideoConfig, {**kw, "name": "two", "nproc": 2}))
    a, b = tensors(one), tensors(two)
    for k in a:
        if k.startswith("model."):
            torch.testing.assert_close(a[k], b[k], atol=2e-5, rtol=0, msg=k)
    from vislab.models.registry import MODELS

    state = ckpt.read_state(one)
    torch.manual_seed(0)  # the run's --seed: the weights it started from
    init = MODELS.build("two_stream", **state["model_args"]).state_dict()
    for head in ("rgb_head", "flow_head", "head"):  # the joint head and both streams' own heads trained
        assert not torch.equal(a[f"model.{head}.weight"], init[f"{head}.weight"]), head
