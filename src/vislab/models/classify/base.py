"""The interface every vislab classifier has (timm's): features, head, classifier reset."""

from __future__ import annotations

import torch
from torch import nn

from vislab.core.errors import ModelError

STEMS = ("imagenet", "cifar")


def check_stem(stem: str) -> str:
    if stem not in STEMS:
        raise ModelError(f"stem: expected one of {', '.join(STEMS)}, got {stem!r}")
    return stem


class Classifier(nn.Module):
    """A backbone (``forward_features``) followed by pooling + a linear head (``forward_head``).

    Subclasses set ``self.num_features`` and build ``self.head`` with :meth:`reset_classifier`.
    """

    num_classes: int
    num_features: int
    drop_rate: float = 0.0
    #: submodules whose outputs are the multi-scale maps of :meth:`feature_pyramid`, shallow to deep
    #: (the method is not called ``features``: torchvision models own a ``features`` submodule)
    feature_modules: tuple[str, ...] = ()
    #: the layer CAMs look at by default (None: the last of ``feature_modules``); see vislab.explain.cam
    cam_layer: str | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F, h, w)
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # (B, F, h, w) -> (B, K)
        if x.ndim == 4:
            x = torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1)
        x = self.head_drop(x)
        return x if pre_logits else self.head(x)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.head_drop = nn.Dropout(self.drop_rate)
        self.head = nn.Linear(self.num_features, num_classes) if num_classes > 0 else nn.Identity()

    def get_classifier(self) -> nn.Module:
        return self.head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def feature_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Multi-scale feature maps, shallow to deep: ``[(B, C_i, H_i, W_i), ...]``.

        The outputs of :attr:`feature_modules` (captured with forward hooks during one
        :meth:`forward_features`); a model that names none returns ``[forward_features(x)]``.
        """
        if not self.feature_modules:
            return [self.forward_features(x)]
        outs: dict[str, torch.Tensor] = {}
        handles = [
            self.get_submodule(n).register_forward_hook(lambda _m, _i, o, n=n: outs.__setitem__(n, o))
            for n in self.feature_modules
        ]
        try:
            self.forward_features(x)
        finally:
            for h in handles:
                h.remove()
        return [outs[n] for n in self.feature_modules]


def stage_ends(features: nn.Module, prefix: str = "features", last: int = 5) -> tuple[str, ...]:
    """Names of the last child of ``features`` at each resolution, from conv and pool strides.

    For ``feature_pyramid``: e.g. VGG-16 -> the ReLU before each max pool and the last pool.
    Returns at most the ``last`` deepest levels.
    """
    ends: dict[int, str] = {}
    stride = 1
    for i, (name, layer) in enumerate(features.named_children()):
        for m in layer.modules():
            if isinstance(m, nn.Conv2d | nn.MaxPool2d | nn.AvgPool2d):
                s = m.stride if isinstance(m.stride, int) else m.stride[0]
                stride *= int(s or 1)
        ends[stride] = f"{prefix}.{name}"
    return tuple(ends[s] for s in sorted(ends))[-last:]


class ConvFCClassifier(Classifier):
    """The AlexNet / VGG / SPP-net shape: conv ``features`` -> ``pool`` to a vector -> ``fc`` layers -> ``head``.

    Args:
        features: conv stack, (B, C, H, W) -> (B, F, h, w).
        pool: (B, F, h, w) -> (B, P) (adaptive pooling + flatten, or a spatial pyramid).
        fc: the hidden fully connected layers, (B, P) -> (B, num_features); ``nn.Identity()`` for none.
        num_features: width of the vector the head sees.
        num_classes: classes of the final linear layer.
        drop_rate: dropout just before the head.
    """

    def __init__(self, features: nn.Module, pool: nn.Module, fc: nn.Module, num_features: int, num_classes: int, drop_rate: float = 0.0):
        super().__init__()
        self.features, self.pool, self.fc = features, pool, fc
        if not type(self).feature_modules:
            self.feature_modules = stage_ends(features)
        self.num_features = num_features
        self.drop_rate = drop_rate
        self.reset_classifier(num_classes)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, F, h, w)
        return self.features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:  # (B, F, h, w) -> (B, K)
        x = self.head_drop(self.fc(self.pool(x)))
        return x if pre_logits else self.head(x)


def init_conv_fc(model: nn.Module, linear_std: float = 0.01) -> nn.Module:
    """torchvision's AlexNet/VGG initialisation: Kaiming-normal convs, N(0, std) linears, zero biases, unit BN."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, linear_std)
            nn.init.zeros_(m.bias)
    return model
