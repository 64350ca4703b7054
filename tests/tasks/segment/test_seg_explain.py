"""``vislab segment explain``: Grad-CAM of a class over its predicted region, on a briefly trained tiny U-Net."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core import config as C
from vislab.data.segment import generate_shapes_segmentation


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A U-Net (width 8, depth 2) trained 4 epochs on 180 generated 32x32 images of one shape + background (~2 s)."""
    from vislab.tasks.segment import SegmentConfig, train

    n = torch.get_num_threads()
    out = tmp_path_factory.mktemp("runs")
    opts = {"synth_count": 200, "synth_classes": 1, "batch_size": 16, "lr": 1e-2, "epochs": 4, "out": str(out), "name": "x",
            "progress": "off", "tensorboard": False, "report": False, "threads": 1, "seed": 0, "model": "unet", "width": 8, "depth": 2}
    path = train(C.from_dict(SegmentConfig, opts))
    torch.set_num_threads(n)
    return path


def test_gradcam_concentrates_on_the_object(run):
    from vislab.engine.checkpoint import load_model
    from vislab.tasks.segment.explain import class_region_maps, region_stats

    model, st = load_model(str(run), task="segment")
    s = generate_shapes_segmentation(8, 1, 32, seed=5)  # unseen images; ground truth: class 1 = the shape
    x = (s.images.float() / 255 - torch.tensor(st["mean"]).view(1, -1, 1, 1)) / torch.tensor(st["std"]).view(1, -1, 1, 1)
    for layer in (None, "down.2"):  # the last decoder block (cam_layer) and the 8x8 bottleneck
        maps, classes, _ = class_region_maps(model, x, ["gradcam"], class_index=1, layer=layer)
        assert classes == [1] * 8 and maps["gradcam"].shape == (8, 32, 32)
        stats = [region_stats(maps["gradcam"][i], (s.masks[i] == 1).numpy()) for i in range(8)]
        mean_in, mean_out = np.mean([r["mean_in"] for r in stats]), np.mean([r["mean_out"] for r in stats])
        print(f"layer {layer}: Grad-CAM mean inside the object {mean_in:.3f}, outside {mean_out:.3f}")
        assert mean_in > 2 * mean_out, (layer, mean_in, mean_out)  # measured: 0.22 vs 0.01, 0.36 vs 0.08


def test_segment_explain_cli_writes_pngs(run, cli, tmp_path):
    s = generate_shapes_segmentation(2, 1, 32, seed=7)
    for i in range(2):
        Image.fromarray(s.images[i].permute(1, 2, 0).numpy()).save(tmp_path / f"e{i}.png")
    out = tmp_path / "cams"
    code, stdout, err = cli("segment", "explain", str(run), str(tmp_path / "e0.png"), str(tmp_path / "e1.png"),
                            "--methods", "gradcam,eigencam", "--out", str(out))
    assert code == 0, err
    for i in range(2):
        with Image.open(out / f"e{i}_cam.png") as im:
            assert im.format == "PNG" and im.size[0] > 300
    rep = json.loads((out / "explain.json").read_text())
    assert rep["layer"] == "blocks.1" and set(rep["images"][0]["methods"]) == {"gradcam", "eigencam"}
    assert "in region" in stdout
    code, _, err = cli("segment", "explain", str(run), str(tmp_path / "e0.png"), "--target-class", "circel")
    assert code == 2 and "did you mean 'circle'" in err and err.strip().count("\n") == 0
