"""Learning bars on generated identities, measured on identities never seen in training (the open-set protocol):
ArcFace and triplet models clear a stated P@1 and verification accuracy and beat the untrained embedding of the
same backbone by a stated margin; center loss shrinks the spread of each identity's embeddings vs softmax alone."""

from __future__ import annotations

import json

import pytest
import torch

from vislab.core.config import from_dict
from vislab.data.embed import EmbedStream, load_embed_data
from vislab.engine.checkpoint import load_model
from vislab.engine.evaluate import run_eval
from vislab.tasks import embed
from vislab.tasks.embed.task import EmbedTask, build_model

BASE = {"synth_classes": 60, "synth_count": 1200, "epochs": 8, "width": 16, "progress": "off", "tensorboard": False, "report": False,
        "precision": "fp32", "threads": 1}


def _cfg(tmp_path, **kw) -> embed.EmbedConfig:
    return from_dict(embed.EmbedConfig, {"out": str(tmp_path), **BASE, **kw})


def _untrained_test_numbers(cfg) -> dict[str, float]:
    """The same backbone and head, randomly initialised with the run's seed, on the same test identities."""
    splits = load_embed_data(cfg.data)
    torch.manual_seed(cfg.train.seed)
    model, _ = build_model(cfg.model, len(splits.train.classes), splits.train.channels, splits.train.size)
    mean, std = splits.train.stats()
    stream = EmbedStream(splits.test, 256, train=False, device=torch.device("cpu"), mean=mean, std=std)
    return run_eval(EmbedTask(cfg.model.distance), model, stream).compute()


@pytest.mark.parametrize(("loss", "distance", "p_at_1", "verif"), [("arcface", "cosine", 0.85, 0.8), ("triplet", "cosine", 0.9, 0.85),
                                                                    ("triplet", "euclidean", 0.85, 0.8)])
def test_learns_identities_it_never_saw(tmp_path, loss, distance, p_at_1, verif, one_thread):
    """Measured (60 identities of 20 images: 39 train, 9 val, 12 test; 8 epochs, one thread, ~15 s each): arcface test
    P@1 0.958, verification accuracy 0.877 (mAP@R 0.685); triplet 0.996, 0.915 (0.754); the untrained embedding
    P@1 0.08-0.13, verification 0.50 (chance), mAP@R 0.025. Triplet with euclidean distance (raw embeddings, the
    loss and miner measuring raw L2 too): P@1 0.975, verification 0.859."""
    cfg = _cfg(tmp_path, loss=loss, distance=distance, name=loss)
    run = embed.train(cfg)
    s = json.loads((run / "run.json").read_text())["summary"]
    base = _untrained_test_numbers(cfg)
    assert s["test_p_at_1"] >= p_at_1 and s["test_verif_acc"] >= verif, s
    assert s["test_p_at_1"] >= base["p_at_1"] + 0.3 and s["test_verif_acc"] >= base["verif_acc"] + 0.15, (s, base)
    assert s["test_map_at_r"] >= 2 * base["map_at_r"], (s, base)
    assert 0 < s["threshold"] < (2 if distance == "cosine" else float("inf"))  # chosen on the validation identities


def _spread(run) -> float:
    """Mean squared distance of the training images' raw embeddings to their identity's mean, over the mean squared
    distance to the overall mean (scale-free: 1 when identities are not grouped at all)."""
    model, state = load_model(run)
    cfg = from_dict(embed.EmbedConfig, state["config"])
    splits = load_embed_data(cfg.data)
    stream = EmbedStream(splits.train, 256, train=False, device=torch.device("cpu"), mean=state["mean"], std=state["std"])
    with torch.no_grad():
        z = torch.cat([model(b.x) for b in stream.epoch(0)])
    y = splits.train.labels
    centres = torch.stack([z[y == c].mean(0) for c in range(int(y.max()) + 1)])
    return float((z - centres[y]).pow(2).sum(1).mean() / (z - z.mean(0)).pow(2).sum(1).mean())


def test_center_loss_shrinks_each_identitys_spread(tmp_path, one_thread):
    """Measured (same data, 5 epochs): spread 0.398 with softmax alone, 0.098 with softmax + center loss (weight 1)."""
    soft = embed.train(_cfg(tmp_path, loss="softmax", name="softmax", epochs=5))
    center = embed.train(_cfg(tmp_path, loss="center", center_weight=1.0, name="center", epochs=5))
    a, b = _spread(soft), _spread(center)
    assert b <= 0.5 * a, (a, b)
