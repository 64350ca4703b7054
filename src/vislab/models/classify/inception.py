"""GoogLeNet (Szegedy et al., 2014), Inception-v3 (Szegedy et al., 2015) on torchvision's modules, and
Inception-ResNet-v2 (Szegedy et al., 2016) on timm's.

The torchvision networks are used module for module (names, initialisation and counts are
torchvision's) without their auxiliary classifiers and without ``transform_input``.
The CIFAR stems keep every Inception block and remove the early downsampling:

* GoogLeNet: 3x3/1 first conv, no max pools in the stem: 32 -> 32 at ``inception3a``, 8 at ``inception5b``.
* Inception-v3: 3x3/1 first convs (padded), only the second stem pool: 32 -> 15 at ``Mixed_5b``, 3 at ``Mixed_7c``.
* Inception-ResNet-v2: same as Inception-v3: 32 -> 15 at ``mixed_5b``, 3 at ``conv2d_7b``.

Example:
    >>> import torch
    >>> googlenet(num_classes=10, stem="cifar")(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import Classifier, check_stem
from vislab.models.classify.timm_adapter import TimmClassifier, create_timm

_tv_googlenet = importlib.import_module("torchvision.models.googlenet")  # the module, not the builder function
_tv_inception = importlib.import_module("torchvision.models.inception")


class StagedClassifier(Classifier):
    """Runs named submodules in order as ``forward_features``; global average pooling + linear head.

    Args:
        stages: ``(name, module)`` pairs in execution order.
        num_features: channels of the last stage.
        feature_modules: names whose outputs :meth:`feature_pyramid` returns.
    """

    def __init__(self, stages: list[tuple[str, nn.Module]], num_features: int, num_classes: int, drop_rate: float, feature_modules: tuple[str, ...]):
        super().__init__()
        self._order = [name for name, _ in stages]
        for name, module in stages:
            self.add_module(name, module)
        self.num_features = num_features
        self.drop_rate = drop_rate
        self.feature_modules = feature_modules
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F, h, w)
        for name in self._order:
            x = getattr(self, name)(x)
        return x


def _googlenet_stages(tv: nn.Module, in_chans: int, stem: str) -> list[tuple[str, nn.Module]]:
    names = ["conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b", "maxpool3", "inception4a",
             "inception4b", "inception4c", "inception4d", "inception4e", "maxpool4", "inception5a", "inception5b"]  # fmt: skip
    mods = {n: getattr(tv, n) for n in names}
    if stem == "cifar":
        mods["conv1"] = _tv_googlenet.BasicConv2d(in_chans, 64, kernel_size=3, stride=1, padding=1)
        mods["maxpool1"] = mods["maxpool2"] = nn.Identity()
    elif in_chans != 3:
        mods["conv1"] = _tv_googlenet.BasicConv2d(in_chans, 64, kernel_size=7, stride=2, padding=3)
    return [(n, mods[n]) for n in names]


@register_model(task="classify", family="inception", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32))
def googlenet(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.2) -> StagedClassifier:
    """GoogLeNet / Inception-v1 (Szegedy et al., 2014), no auxiliary heads: 6.6M parameters at 1000 classes."""
    tv = _tv_googlenet.GoogLeNet(num_classes=1, aux_logits=False, transform_input=False, init_weights=True)
    stages = _googlenet_stages(tv, in_chans, check_stem(stem))
    return StagedClassifier(stages, 1024, num_classes, drop_rate, ("conv3", "inception3b", "inception4e", "inception5b"))


class InceptionV3(StagedClassifier):
    """Inception-v3; ``aux_head`` (torchvision's ``AuxLogits`` on ``Mixed_6e``) exists only with ``aux_logits=True``.

    The auxiliary head is kept for parameter parity with the paper / torchvision count (27.2M) and for
    loading torchvision checkpoints; :meth:`forward` returns the main logits only.
    """


def _basic(cin: int, cout: int, k: int, stride: int = 1, padding: int = 0) -> nn.Module:
    conv = _tv_inception.BasicConv2d(cin, cout, kernel_size=k, stride=stride, padding=padding)
    nn.init.trunc_normal_(conv.conv.weight, mean=0.0, std=0.1, a=-2, b=2)  # torchvision's init_weights
    return conv


@register_model(task="classify", family="inception", input_size=(3, 299, 299), cifar_input_size=(3, 32, 32), min_size=75)
def inception_v3(
    num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.5, aux_logits: bool = False
) -> InceptionV3:
    """Inception-v3 (Szegedy et al., 2015), 299x299 input: 23.8M parameters (27.2M with the auxiliary head)."""
    check_stem(stem)
    tv = _tv_inception.Inception3(num_classes=num_classes, aux_logits=aux_logits, transform_input=False, init_weights=True)
    names = ["Conv2d_1a_3x3", "Conv2d_2a_3x3", "Conv2d_2b_3x3", "maxpool1", "Conv2d_3b_1x1", "Conv2d_4a_3x3", "maxpool2",
             "Mixed_5b", "Mixed_5c", "Mixed_5d", "Mixed_6a", "Mixed_6b", "Mixed_6c", "Mixed_6d", "Mixed_6e",
             "Mixed_7a", "Mixed_7b", "Mixed_7c"]  # fmt: skip
    mods = {n: getattr(tv, n) for n in names}
    if stem == "cifar":  # (B, C, 32, 32) -> (B, 192, 15, 15) at Mixed_5b
        mods["Conv2d_1a_3x3"] = _basic(in_chans, 32, 3, 1, 1)
        mods["Conv2d_2a_3x3"] = _basic(32, 32, 3, 1, 1)
        mods["maxpool1"] = nn.Identity()
        mods["Conv2d_4a_3x3"] = _basic(80, 192, 3, 1, 1)
    elif in_chans != 3:
        mods["Conv2d_1a_3x3"] = _basic(in_chans, 32, 3, 2)
    stages = [(n, mods[n]) for n in names]
    model = InceptionV3(stages, 2048, num_classes, drop_rate, ("Conv2d_4a_3x3", "Mixed_5d", "Mixed_6e", "Mixed_7c"))
    if aux_logits:
        model.aux_head = tv.AuxLogits
    return model


@register_model(task="classify", family="inception", input_size=(3, 299, 299), cifar_input_size=(3, 32, 32), min_size=75)
def inception_resnet_v2(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0) -> TimmClassifier:
    """Inception-ResNet-v2 (Szegedy et al., 2016), timm's implementation: 55.8M parameters at 1000 classes."""
    model = create_timm("inception_resnet_v2", num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate)
    if check_stem(stem) == "cifar":  # (B, C, 32, 32) -> (B, 192, 15, 15) at mixed_5b
        net = model.model
        net.conv2d_1a.conv.stride = (1, 1)
        for conv in (net.conv2d_1a.conv, net.conv2d_2a.conv, net.conv2d_4a.conv):
            conv.padding = (1, 1)
        net.maxpool_3a = nn.Identity()
    return model
