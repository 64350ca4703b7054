"""Augmentation presets and lists on batches, mixup / cutmix targets, TTA that helps, data preview."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.config import from_dict
from vislab.core.errors import ConfigError
from vislab.data.classify.augment import BatchPipeline, parse_augment
from vislab.data.classify.source import DataConfig, load_dataset
from vislab.tasks import classify

QUIET = {"progress": "off", "tensorboard": False, "report": False}


def test_parse_presets_and_lists():
    assert parse_augment("standard") == ("flip", "translate")
    assert parse_augment("strong") == ("flip", "crop", "jitter", "randaugment", "erasing")
    assert parse_augment("cutmix, flip") == ("flip", "cutmix")  # pipeline order, not typed order
    with pytest.raises(ConfigError, match="did you mean 'erasing'"):
        parse_augment("flip,erasng")


@pytest.mark.parametrize("spec", ["strong", "rotate,trivialaugment", "crop,jitter,erasing"])
def test_pipeline_is_deterministic_and_rank_independent(spec):
    x = torch.randint(0, 256, (6, 3, 17, 11), dtype=torch.uint8)
    y = torch.arange(6)
    aug = BatchPipeline(parse_augment(spec), (17, 11), 3)
    full, _, _ = aug(x, y, torch.Generator().manual_seed(3), 6, slice(0, None, 1))
    again, _, _ = aug(x, y, torch.Generator().manual_seed(3), 6, slice(0, None, 1))
    torch.testing.assert_close(full, again)
    assert full.shape == (6, 3, 17, 11) and float(full.min()) >= 0 and float(full.max()) <= 1
    assert (full - x.float() / 255).abs().mean() > 0.02  # it does change the images
    for r in range(2):  # two processes, each its strided share: the same pixels as one process
        sel = slice(r, None, 2)
        part, _, _ = aug(x[sel], y[sel], torch.Generator().manual_seed(3), 6, sel)
        torch.testing.assert_close(part, full[sel], atol=1e-5, rtol=0)


def test_mixup_and_cutmix_targets():
    x = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    y = torch.tensor([0, 1, 2, 3])
    out, y2, lam = BatchPipeline(("mixup",), (8, 8), 1)(x, y, torch.Generator().manual_seed(0), 4, slice(0, None, 1))
    assert y2.tolist() == [3, 2, 1, 0] and 0 < float(lam) < 1
    xf = x.float() / 255
    torch.testing.assert_close(out, lam * xf + (1 - lam) * xf.flip(0))
    out, y2, lam = BatchPipeline(("cutmix",), (8, 8), 1)(x, y, torch.Generator().manual_seed(1), 4, slice(0, None, 1))
    pasted = (out != xf).float().mean().item()  # fraction of pixels taken from the partner (ties aside)
    assert abs((1 - float(lam)) - pasted) < 0.1


def test_strong_with_mixing_trains(tmp_path):
    cfg = from_dict(classify.ClassifyConfig, {"data": "digits", "img_size": 16, "epochs": 1, "batch_size": 64, "limit": 256,
                                              "augment": "strong,mixup,cutmix", "out": str(tmp_path), **QUIET})
    run = classify.train(cfg)
    s = json.loads((run / "run.json").read_text())["summary"]
    assert np.isfinite(s["train_loss"]) and s["test_acc"] >= 0


def test_flip_tta_helps_on_mirrored_digits(tmp_path, cli):
    """Trained on digits (no flips), tested on *mirrored* digits: averaging with the mirror view recovers accuracy."""
    run = classify.train(from_dict(classify.ClassifyConfig, {"data": "digits", "img_size": 16, "epochs": 5, "batch_size": 64,
                                                             "augment": "light", "out": str(tmp_path), **QUIET}))
    test = load_dataset(from_dict(DataConfig, {"data": "digits", "img_size": 16})).test
    folder = tmp_path / "mirrored"
    folder.mkdir()
    truth = {}
    for i in range(len(test)):
        p = folder / f"{i:04d}.png"
        Image.fromarray(test.images[i, 0].flip(1).numpy()).save(p)
        truth[str(p)] = test.classes[int(test.labels[i])]
    rows = {}
    for mode in ("none", "flip", "flip-crop"):
        out = tmp_path / f"pred-{mode}.csv"
        code, _, err = cli("classify", "predict", str(run), str(folder), "--tta", mode, "--out", str(out), "--topk", "3")
        assert code == 0, err
        with open(out) as f:
            rows[mode] = list(csv.DictReader(f))
    acc = {m: np.mean([r["label"] == truth[r["path"]] for r in rs]) for m, rs in rows.items()}
    assert acc["flip"] >= acc["none"] + 0.15, acc  # measured: see docs/transfer.md
    changed = np.mean([a["label"] != b["label"] for a, b in zip(rows["none"], rows["flip"], strict=True)])
    assert changed > 0.1
    for m in ("flip", "flip-crop"):  # same files, same columns, labels from the same class list
        assert list(rows[m][0]) == list(rows["none"][0]) and len(rows[m]) == len(rows["none"])
        assert {r["label"] for r in rows[m]} <= set(test.classes)
        assert all(0 <= float(r["prob"]) <= 1 for r in rows[m])
    code, out, err = cli("classify", "eval", str(run), "--tta", "flip", "--out", str(tmp_path / "ev"))
    assert code == 0 and "acc" in out, err


def test_data_preview_writes_grid(tmp_path, cli):
    out = tmp_path / "grid.png"
    code, _, err = cli("data", "preview", "--data", "shapes", "--synth-count", "40", "--augment", "strong", "--n", "8", "--out", str(out))
    assert code == 0, err
    im = np.asarray(Image.open(out))
    assert im.shape[0] > 100 and im.shape[1] > 300
    code, _, err = cli("data", "preview", "--data", "shapes", "--augment", "sharpen")
    assert code == 2 and "expected a preset" in err
