"""Offline transfer learning: pretrain on one generated task, fine-tune on another with 20 labels per class.

Source task: the bundled synthetic shapes, classes circle/square/triangle/star/cross.
Target task: *other* shapes (ellipse/hexagon/diamond/pentagon/ring) written as an ImageFolder with
20 training images per class and 60 held-out test images per class. Same budget for every strategy
(15 epochs, batch 20). Measured here (seed 0): scratch 0.25, linear 0.70, full 0.49 held-out accuracy (gradual 0.57).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vislab.core.config import from_dict
from vislab.core.errors import ConfigError
from vislab.data.synthetic import generate_shapes
from vislab.engine import checkpoint as ckpt
from vislab.tasks import classify

QUIET = {"progress": "off", "tensorboard": False, "report": False}
NEW = ["ellipse", "hexagon", "diamond", "pentagon", "ring"]
MARGIN = 0.15  # linear and full must beat scratch by at least this much held-out accuracy


def write_folder(root: Path, classes: list[str], n_per: int, seed: int) -> None:
    d = generate_shapes(n_per * len(classes), classes=classes, size=32, seed=seed)
    for i, (img, lab) in enumerate(zip(d["images"], d["labels"], strict=True)):
        p = root / d["classes"][lab] / f"{i}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(img).transpose(1, 2, 0)).save(p)


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("tl")
    target = root / "target"
    write_folder(target / "train", NEW, 20, seed=1)
    write_folder(target / "test", NEW, 60, seed=2)
    pre = classify.train(from_dict(classify.ClassifyConfig, {
        "data": "shapes", "synth_classes": 5, "synth_count": 1500, "epochs": 6, "batch_size": 32, "lr": 0.02,
        "out": str(root / "runs"), "name": "pretrain", **QUIET}))
    return root, target, pre


def finetune(root: Path, target: Path, name: str, **kw) -> Path:
    cfg = {"data": str(target), "val_split": 0, "epochs": 15, "batch_size": 20, "lr": 0.02, "out": str(root / "runs"),
           "name": name, "finetune": name, **QUIET, **kw}
    return classify.train(from_dict(classify.ClassifyConfig, cfg))


def test_transfer_beats_scratch_and_compare_table(setup, cli):
    root, target, pre = setup
    runs = {
        "scratch": finetune(root, target, "scratch"),
        "linear": finetune(root, target, "linear", weights=str(pre), lr=0.05),
        "full": finetune(root, target, "full", weights=str(pre), lr=0.01),
    }
    acc = {k: json.loads((r / "run.json").read_text())["summary"]["test_acc"] for k, r in runs.items()}
    assert acc["linear"] >= acc["scratch"] + MARGIN, acc
    assert acc["full"] >= acc["scratch"] + MARGIN, acc
    # the checkpoint records the source and its normalisation; linear left the backbone untouched
    _, state = ckpt.load(runs["linear"] / "checkpoints" / "best.safetensors")
    _, pre_state = ckpt.load(pre / "checkpoints" / "best.safetensors")
    assert state["weights"]["head_reset"] and state["weights"]["counts"] == {"missing": 0, "unexpected": 0, "reshaped": 0}
    assert state["mean"] == pre_state["mean"] and state["classes"] == sorted(NEW)
    lin = ckpt.part(ckpt.load(runs["linear"] / "checkpoints" / "last.safetensors")[0], "model")
    src = ckpt.part(ckpt.load(pre / "checkpoints" / "best.safetensors")[0], "model")
    assert all((lin[k] == src[k]).all() for k in src if not k.startswith("head"))  # BN statistics included
    # the three-run comparison, through the CLI
    code, out, err = cli("compare", *(str(r) for r in runs.values()), "--out", str(root / "cmp"), "--sort", "test_acc")
    assert code == 0, err
    rows = json.loads((root / "cmp" / "compare.json").read_text())
    assert [r["run"] for r in rows][-1] == "scratch" and {r["finetune"] for r in rows} == {"scratch", "linear", "full"}
    assert all(r["params"] == rows[0]["params"] > 0 for r in rows)
    for f in ("compare.csv", "compare.md", "curves.png", "compare.html"):
        assert (root / "cmp" / f).stat().st_size > 100
    assert "linear" in out and "test_acc" in out


def test_gradual_unfreezes_and_resume_keeps_schedule(setup, cli):
    root, target, pre = setup
    run = finetune(root, target, "gradual", weights=str(pre), lr=0.01, epochs=2, layer_decay=0.5, freeze_bn=True)
    _, state = ckpt.load(run / "checkpoints" / "last.safetensors")
    groups = state["optimizer"]["param_groups"]
    assert [g["name"] for g in groups][:2] == ["head", "head"] and groups[0]["lr_scale"] == 1.0
    assert {g["name"]: g["lr_scale"] for g in groups}["stage0"] == 0.125
    w = ckpt.part(ckpt.load(run / "checkpoints" / "last.safetensors")[0], "model")
    src = ckpt.part(ckpt.load(pre / "checkpoints" / "best.safetensors")[0], "model")
    # 2 epochs: head, then stage2 trained; stage0/1 untouched; BatchNorm frozen everywhere
    assert not (w["features.6.0.weight"] == src["features.6.0.weight"]).all()
    assert (w["features.0.0.weight"] == src["features.0.0.weight"]).all()
    assert all((w[k] == src[k]).all() for k in src if "running" in k or k.endswith(("1.weight", "1.bias")) and ".1." in k)
    cli("--version")  # flush what the training above logged
    code, _, err = cli("classify", "train", "--data", str(target), "--finetune", "linear", "--out", str(root / "runs"), "--epochs", "1")
    assert code == 2 and err.count("\n") == 1 and "expected --weights PATH or --pretrained TAG" in err, err
    code, _, err = cli("classify", "train", "--data", str(target), "--pretrained", "resnet18", "--model", "resnet18",
                       "--out", str(root / "runs"), "--epochs", "1", "--progress", "off")
    assert code == 2 and "expected cached weights" in err and "--weights PATH" in err, err
    with pytest.raises(ConfigError, match="layer-decay"):
        classify.validate(from_dict(classify.ClassifyConfig, {"layer_decay": 0}))
