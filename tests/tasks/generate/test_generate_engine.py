"""Image synthesis in the shared engine: a killed DCGAN run resumes to the same G and D weights (and EMA,
optimizers) as an uninterrupted one; 2-process DDP takes exactly the GAN steps of one process; the noise of every
global batch is sliced by rank like the images."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import torch

from vislab.core.config import from_dict
from vislab.data.generate import GenDataConfig, GenStream, load_gen_data
from vislab.engine import checkpoint as ckpt
from vislab.tasks import generate

QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "sample_every": -1}


def tensors(run: Path, which: str = "last") -> dict[str, torch.Tensor]:
    return ckpt.load(run / "checkpoints" / f"{which}.safetensors")[0]


def _train_cmd(out: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "vislab", "generate", "train", "--model", "dcgan", "--data", "digits", "--img-size", "16", "--limit", "160",
            "--batch-size", "32", "--width", "16", "--z-dim", "16", "--epochs", "4", "--ema-decay", "0.9", "--threads", "1", "--precision", "fp32",
            "--out", str(out), "--name", name, "--progress", "off", "--no-tensorboard", "--no-report", "--seed", "3"]


def test_killed_dcgan_run_resumes_to_identical_generator_critic_optimizers_and_ema(tmp_path, kill_and_resume):
    ref = subprocess.run(_train_cmd(tmp_path, "ref"), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    killed_at = kill_and_resume(_train_cmd(tmp_path, "killed"), tmp_path / "generate" / "killed", "generate")
    assert 2 <= killed_at < 4, "the kill must land before the run finished"
    a, b = tensors(tmp_path / "generate" / "ref"), tensors(tmp_path / "generate" / "killed")
    assert a.keys() == b.keys() and any(k.startswith("model.G.") for k in a) and any(k.startswith("model.D.") for k in a)
    assert any(k.startswith("ema.G.") for k in a) and any(k.startswith("optim.D.") for k in a)
    for k in a:  # the same steps on the same machine and thread count: bit for bit
        assert torch.equal(a[k], b[k]), k
    dyn = (tmp_path / "generate" / "killed" / "dynamics.csv").read_text().splitlines()
    ref_dyn = (tmp_path / "generate" / "ref" / "dynamics.csv").read_text().splitlines()
    assert len(dyn) == 1 + 4 * (160 // 32) and dyn == ref_dyn  # one row per step, none lost or repeated across the kill


def test_ddp_two_processes_take_the_steps_of_one(tmp_path):
    # WGAN-GP: critic steps, a generator step every 5th batch, the penalty's double backward, EMA of G.
    # No batch norm: each process would normalise its half batch (SyncBatchNorm needs CUDA).
    kw = dict(QUIET, model="wgan_gp", data="digits", img_size=16, limit=192, batch_size=32, width=8, z_dim=8, epochs=2, ema_decay=0.9,
              g_norm="none", d_norm="none", out=str(tmp_path))
    one = generate.train(from_dict(generate.GenConfig, {**kw, "name": "one"}))
    two = generate.train(from_dict(generate.GenConfig, {**kw, "name": "two", "nproc": 2}))
    a, b = tensors(one), tensors(two)
    assert a.keys() == b.keys()
    for k in a:
        if k.startswith(("model.", "ema.")):
            torch.testing.assert_close(a[k].float(), b[k].float(), atol=2e-5, rtol=0, msg=k)
    assert json.loads((two / "run.json").read_text())["world_size"] == 2


def test_noise_is_drawn_per_global_batch_and_sliced_by_rank():
    src = load_gen_data(GenDataConfig(data="digits", img_size=8, limit=100)).train
    spec = {"z": ("normal", (2, 4)), "t": ("int", 50), "u": ("uniform", ())}
    whole = [b for b in GenStream(src, 20, train=True, noise=spec, seed=1).epoch(3)]
    parts = [[b for b in GenStream(src, 20, train=True, noise=spec, seed=1, rank=r, world=2).epoch(3)] for r in (0, 1)]
    for k, b in enumerate(whole):
        for name in spec:
            merged = torch.empty_like(b.noise[name])
            merged[0::2], merged[1::2] = parts[0][k].noise[name], parts[1][k].noise[name]
            assert torch.equal(merged, b.noise[name]), name
        assert torch.equal(torch.cat([parts[0][k].x, parts[1][k].x]).sort(0).values, b.x.sort(0).values)
    again = [b.noise["z"] for b in GenStream(src, 20, train=True, noise=spec, seed=1).epoch(3)]
    other = [b.noise["z"] for b in GenStream(src, 20, train=True, noise=spec, seed=1).epoch(4)]
    assert all(torch.equal(x, b.noise["z"]) for x, b in zip(again, whole, strict=True))  # a function of (seed, epoch, batch)
    assert not torch.equal(other[0], whole[0].noise["z"])
    val = [[b.noise["z"] for b in GenStream(src, 20, train=False, noise=spec, seed=1).epoch(e)] for e in (0, 5)]
    assert all(torch.equal(x, y) for x, y in zip(*val, strict=True))  # evaluation: the same noise every epoch
