"""ResNet: both stems, torchvision parity of the body, feature pyramid."""

import pytest
import torch
import torchvision

from vislab.core.errors import ModelError
from vislab.models import create_model


@pytest.mark.parametrize("stem,size,strides", [("cifar", 32, [1, 2, 4, 8]), ("imagenet", 64, [4, 8, 16, 32])])
def test_resnet18_stems(stem, size, strides):
    m = create_model("resnet18", num_classes=7, stem=stem)
    x = torch.randn(2, 3, size, size)
    y = m(x)
    assert y.shape == (2, 7)
    y.sum().backward()
    assert [size // f.shape[-1] for f in m.feature_pyramid(x)] == strides
    assert m.forward_features(x).shape[1] == m.num_features == 512


def test_resnet18_matches_torchvision_parameters():
    ours = create_model("resnet18", num_classes=1000)
    tv = torchvision.models.resnet18(weights=None)
    theirs = {k: v.shape for k, v in tv.state_dict().items() if not k.startswith("fc.")}
    mine = {k: v.shape for k, v in ours.state_dict().items() if not k.startswith("head")}
    assert mine == theirs


def test_resnet_in_chans_reset_and_bad_stem():
    m = create_model("resnet18", num_classes=3, in_chans=1, stem="cifar")
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 3)
    m.reset_classifier(5)
    assert m(torch.randn(2, 1, 16, 16)).shape == (2, 5)
    with pytest.raises(ModelError, match="stem"):
        create_model("resnet18", stem="mnist")
