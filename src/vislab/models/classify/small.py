"""Small classifiers for first experiments: a compact CNN and LeNet-5 (LeCun et al., 1998)."""

from __future__ import annotations

import torch
from torch import nn

from vislab.models.registry import register_model
from vislab.models.classify.base import Classifier, check_stem, stage_ends
from vislab.models.layers import conv_bn_act


class SmallCNN(Classifier):
    """Three conv-BN-ReLU stages with max pooling, widths ``w, 2w, 4w``; fast on a CPU."""

    def __init__(self, num_classes: int = 10, in_chans: int = 3, width: int = 32, stem: str = "cifar", drop_rate: float = 0.0):
        super().__init__()
        check_stem(stem)
        w = width
        first = conv_bn_act(in_chans, w) if stem == "cifar" else nn.Sequential(conv_bn_act(in_chans, w, 7, 2), nn.MaxPool2d(2))
        self.features = nn.Sequential(
            first,
            conv_bn_act(w, w),
            nn.MaxPool2d(2),
            conv_bn_act(w, 2 * w),
            conv_bn_act(2 * w, 2 * w),
            nn.MaxPool2d(2),
            conv_bn_act(2 * w, 4 * w),
        )
        self.feature_modules = stage_ends(self.features)
        self.num_features = 4 * w
        self.drop_rate = drop_rate
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)


class LeNet5(Classifier):
    """LeNet-5: conv(6,5x5) - pool - conv(16,5x5) - pool - fc120 - fc84 - fc(K), tanh, average pooling.

    The classic takes 32x32 inputs; other sizes are pooled to 5x5 before the fully connected layers
    (``stem`` is accepted for the common interface: LeNet *is* a small-input network).
    """

    def __init__(self, num_classes: int = 10, in_chans: int = 1, stem: str = "cifar", drop_rate: float = 0.0):
        super().__init__()
        check_stem(stem)
        self.features = nn.Sequential(
            nn.Conv2d(in_chans, 6, 5),  # (B, 6, 28, 28)
            nn.Tanh(),
            nn.AvgPool2d(2),  # (B, 6, 14, 14)
            nn.Conv2d(6, 16, 5),  # (B, 16, 10, 10)
            nn.Tanh(),
            nn.AvgPool2d(2),  # (B, 16, 5, 5)
        )
        self.pool = nn.AdaptiveAvgPool2d(5)
        self.fc = nn.Sequential(nn.Linear(16 * 25, 120), nn.Tanh(), nn.Linear(120, 84), nn.Tanh())
        self.feature_modules = stage_ends(self.features)
        self.num_features = 84
        self.drop_rate = drop_rate
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        x = self.fc(torch.flatten(self.pool(x), 1))
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)


@register_model(task="classify", family="small", input_size=(3, 32, 32))
def small_cnn(num_classes: int = 10, in_chans: int = 3, stem: str = "cifar", drop_rate: float = 0.0, width: int = 32) -> SmallCNN:
    """Compact 5-conv CNN (conv-BN-ReLU, max pooling); the quick default for small images."""
    return SmallCNN(num_classes, in_chans, width, stem, drop_rate)


@register_model(task="classify", family="lenet", input_size=(1, 32, 32))
def lenet5(num_classes: int = 10, in_chans: int = 1, stem: str = "cifar", drop_rate: float = 0.0) -> LeNet5:
    """LeNet-5 (LeCun et al., 1998): 61.7k parameters for 10 classes on 32x32 gray input."""
    return LeNet5(num_classes, in_chans, stem, drop_rate)
