"""Model summary: counts agree with the parameters, FLOPs with a hand count, stage picture is written."""

from __future__ import annotations

import pytest
import torch
from PIL import Image

from vislab.core.errors import ModelError
from vislab.explain.summary import plot_stage_widths, summarize
from vislab.models import create_model


def test_summary_on_meta_counts_params_and_flops():
    with torch.device("meta"):
        model = create_model("lenet5", num_classes=10)
    s = summarize(model, (1, 32, 32), depth=1)
    assert s.params == sum(p.numel() for p in model.parameters()) == 61_706
    # LeNet-5 multiply-adds, by hand: C1 6*28*28*25 + C3 16*10*10*150 + F5 400*120 + F6 120*84 + out 84*10
    assert s.macs == 6 * 28 * 28 * 25 + 16 * 10 * 10 * 150 + 400 * 120 + 120 * 84 + 84 * 10
    assert s.output_shape == (1, 10)
    assert [r.name for r in s.rows][:2] == ["features", "pool"]
    assert "parameters" in s.to_text() and "61,706" in s.to_text()
    mem = s.memory_estimate()
    assert mem["training"] > mem["inference"] > mem["params"] > 0


def test_summary_batch_scales_flops_and_real_model_works():
    model = create_model("small_cnn", num_classes=3, width=8)
    one, four = summarize(model, (3, 16, 16)), summarize(model, (3, 16, 16), batch_size=4)
    assert four.flops == 4 * one.flops and four.activation_bytes == 4 * one.activation_bytes
    assert model.training  # restored


def test_stage_picture_and_too_small_input(tmp_path):
    with torch.device("meta"):
        model = create_model("resnet18", stem="cifar")
    s = summarize(model, (3, 32, 32), name="resnet18")
    assert [(st.channels, st.height) for st in s.stages] == [(64, 32), (128, 16), (256, 8), (512, 4)]
    png = plot_stage_widths(s, tmp_path / "stages.png")
    assert Image.open(png).size[0] > 400
    with torch.device("meta"):
        alex = create_model("alexnet")
    with pytest.raises(ModelError, match="forward failed at input"):
        summarize(alex, (3, 32, 32))

