"""explain(): every method on a CNN and a ViT, readable PNGs, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from vislab.core.errors import ConfigError, ModelError
from vislab.explain import explain
from vislab.explain.cam import (
    METHODS,
    ClassTarget,
    compute_maps,
    predict,
    resolve_layer,
)
from vislab.models import create_model

MEAN, STD = (0.5, 0.5, 0.5), (0.25, 0.25, 0.25)


pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def test_every_method_on_a_cnn_writes_one_png_per_image(tmp_path):
    torch.manual_seed(0)
    model = create_model("small_cnn", num_classes=3, width=8)
    x = torch.randn(2, 3, 24, 20)
    paths = explain(model, x, methods=(*METHODS, "filters", "feature_maps"), out_dir=tmp_path, mean=MEAN, std=STD,
                    class_names=["a", "b", "c"], image_names=["one.png", "two"], layers=["features.4"])  # fmt: skip
    names = sorted(p.name for p in paths)
    assert names == ["filters.png", "one.png_features_features.4.png", "one.png_maps.png", "two_features_features.4.png", "two_maps.png"]
    for p in paths:
        w, h = Image.open(p).size
        assert w > 300 and h > 200
    wide = Image.open(tmp_path / "two_maps.png").size[0]  # input + 7 panels side by side
    assert wide > 8 * 200


def test_target_class_by_name_and_errors(tmp_path, monkeypatch):
    from vislab.explain import api

    torch.manual_seed(4)  # a seed where the (eval-mode) model predicts 'cat', p = 0.55
    model = create_model("small_cnn", num_classes=2, width=8).eval()
    x = torch.randn(1, 3, 16, 16)
    assert predict(model, x)[0].tolist() == [0]  # so explaining 'dog' cannot pass by falling back to the prediction
    drawn = []

    def spy(image, maps, path, title, **kw):  # what explain() actually draws
        drawn.append((dict(maps), title))
        return plot_maps(image, maps, path, title, **kw)

    plot_maps = api.plot_maps
    monkeypatch.setattr(api, "plot_maps", spy)
    paths = explain(model, x, methods=["gradcam"], target_class="dog", class_names=["cat", "dog"], out_dir=tmp_path / "name")
    assert paths == [tmp_path / "name" / "image0_maps.png"]
    with Image.open(paths[0]) as im:
        assert im.format == "PNG" and im.size == (748, 396)  # input + 1 panel: figsize (3.2 * 2 + 0.4, 3.6) at dpi 110
        by_name = np.asarray(im.convert("RGB"))
    ((panels, title),) = drawn
    assert list(panels) == ["Grad-CAM"] and "requested class 'dog'" in title and "prediction 'cat'" in title
    dog = compute_maps(model, x, "gradcam", targets=[ClassTarget(1)])[0][0]
    cat = compute_maps(model, x, "gradcam", targets=[ClassTarget(0)])[0][0]
    shown = panels["Grad-CAM"]
    assert shown.shape == (16, 16) and np.isfinite(shown).all() and shown.min() >= 0 and shown.max() <= 1
    np.testing.assert_array_equal(shown, dog)
    assert np.abs(dog - cat).max() > 0.5  # the target matters: 'cat' (class 0) gives another map
    # the same class by index draws the same figure, pixel for pixel
    (p1,) = explain(model, x, methods=["gradcam"], target_class=1, class_names=["cat", "dog"], out_dir=tmp_path / "index")
    with Image.open(p1) as im:
        np.testing.assert_array_equal(np.asarray(im.convert("RGB")), by_name)
    with pytest.raises(ConfigError, match="did you mean 'gradcam'"):
        explain(model, x, methods=["gradcamm"], out_dir=tmp_path)
    with pytest.raises(ConfigError, match="expected one of"):
        explain(model, x, target_class="cow", class_names=["cat", "dog"], out_dir=tmp_path)
    with pytest.raises(ModelError, match="expected a submodule name"):
        explain(model, x, layers=["features.99"], out_dir=tmp_path)


def test_vit_cams_use_tokens_reshaped_to_the_patch_grid(tmp_path):
    torch.manual_seed(0)
    model = create_model("vit_tiny", num_classes=3, stem="cifar").eval()
    choice = resolve_layer(model)
    assert choice.name == "model.blocks.11.norm1" and choice.reshape is not None
    x = torch.randn(2, 3, 32, 32)
    for method in ("gradcam", "layercam", "eigencam"):
        maps, _ = compute_maps(model, x, method)
        assert maps.shape == (2, 32, 32) and np.isfinite(maps).all() and maps.max() > 0
    paths = explain(model, x[:1], methods=["gradcam", "feature_maps"], out_dir=tmp_path)
    assert {p.name for p in paths} == {"image0_maps.png", "image0_features_model.blocks.11.norm1.png"}


def test_gray_filters_of_lenet(tmp_path):
    model = create_model("lenet5", num_classes=10)
    (p,) = explain(model, torch.randn(1, 1, 32, 32), methods=["filters"], out_dir=tmp_path)
    assert p.name == "filters.png" and Image.open(p).size[0] > 300


# One model per family, CIFAR stem, an input size giving a final map larger than 1x1.
FAMILY_MODELS = [("small_cnn", 32), ("lenet5", 32), ("alexnet", 32), ("vgg11", 64), ("sppnet", 32), ("googlenet", 16),
                 ("inception_v3", 48), ("inception_resnet_v2", 48), ("resnet18", 32), ("preact_resnet18", 32),
                 ("se_resnet18", 32), ("cbam_resnet18", 32), ("densenet121", 32), ("mobilenet_v1", 32),
                 ("mobilenet_v2", 32), ("mobilenet_v3_small", 32), ("vit_tiny", 32)]  # fmt: skip


@pytest.mark.parametrize("name,size", FAMILY_MODELS)
def test_default_cam_layer_gives_a_map_for_every_family(name, size):
    torch.manual_seed(0)
    chans = 1 if name == "lenet5" else 3
    model = create_model(name, num_classes=3, in_chans=chans, stem="cifar").eval()
    x = torch.randn(2, chans, size, size)
    for method in ("gradcam", "eigencam"):
        maps, _ = compute_maps(model, x, method)
        assert maps.shape == (2, size, size) and np.isfinite(maps).all()
    assert maps.max() > 0.5  # Eigen-CAM of any non-degenerate activation has a peak at 1
