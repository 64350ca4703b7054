"""Image-to-image translation in the shared engine: a killed pix2pix run resumes to the weights of an uninterrupted
one (G, D, both optimizers, EMA, the per-step losses); 2-process DDP takes exactly CycleGAN's steps of one process
(four networks, two optimizers, generators used twice per step)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import torch

from vislab.core.config import from_dict
from vislab.engine import checkpoint as ckpt
from vislab.tasks import translate

QUIET = {"progress": "off", "tensorboard": False, "report": False, "threads": 1, "precision": "fp32", "sample_every": -1}


def tensors(run: Path) -> dict[str, torch.Tensor]:
    return ckpt.load(run / "checkpoints" / "last.safetensors")[0]


def _cmd(out: Path, name: str) -> list[str]:
    return [sys.executable, "-m", "vislab", "translate", "train", "--model", "pix2pix", "--data", "edges2shapes", "--synth-count", "72",
            "--img-size", "32", "--width", "8", "--batch-size", "8", "--epochs", "4", "--ema-decay", "0.9", "--threads", "1", "--precision", "fp32",
            "--out", str(out), "--name", name, "--progress", "off", "--no-tensorboard", "--no-report", "--seed", "5", "--sample-every", "-1"]


def test_killed_pix2pix_run_resumes_to_the_uninterrupted_weights(tmp_path, kill_and_resume):
    ref = subprocess.run(_cmd(tmp_path, "ref"), capture_output=True, text=True, timeout=300)
    assert ref.returncode == 0, ref.stderr
    killed_at = kill_and_resume(_cmd(tmp_path, "killed"), tmp_path / "translate" / "killed", "translate")
    assert 2 <= killed_at < 4, "the kill must land before the run finished"
    a, b = tensors(tmp_path / "translate" / "ref"), tensors(tmp_path / "translate" / "killed")
    assert a.keys() == b.keys() and any(k.startswith("model.G.") for k in a) and any(k.startswith("optim.D.") for k in a)
    assert any(k.startswith("ema.G.") for k in a)
    for k in a:
        assert torch.equal(a[k], b[k]), k
    rows = (tmp_path / "translate" / "killed" / "dynamics.csv").read_text().splitlines()
    assert rows == (tmp_path / "translate" / "ref" / "dynamics.csv").read_text().splitlines() and len(rows) == 1 + 4 * (64 // 8)


def test_ddp_two_processes_take_cyclegan_steps_of_one(tmp_path):
    # No image pool: each process keeps its own (of its share of the fakes), so pooled runs differ by design. No norm: a
    # bias right before an instance norm (CycleGAN's layout) has a zero gradient up to rounding, which Adam's division by
    # sqrt(v) turns into lr-sized steps of noise -- they differ between any two runs that round differently.
    kw = dict(QUIET, model="cyclegan", data="warm2cool", synth_count=24, img_size=32, width=4, blocks=1, d_layers=1, batch_size=8, epochs=1,
              pool_size=0, norm="none", out=str(tmp_path))
    one = translate.train(from_dict(translate.TranslateConfig, {**kw, "name": "one"}))
    two = translate.train(from_dict(translate.TranslateConfig, {**kw, "name": "two", "nproc": 2}))
    a, b = tensors(one), tensors(two)
    assert a.keys() == b.keys() and {k.split(".")[1] for k in a if k.startswith("model.")} == {"G_AB", "G_BA", "D_A", "D_B"}
    for k in a:
        if k.startswith("model."):
            torch.testing.assert_close(a[k].float(), b[k].float(), atol=2e-5, rtol=0, msg=k)
