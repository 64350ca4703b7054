"""Any timm model behind vislab's classifier interface: ``create_model("timm:convnext_tiny", num_classes=10)``.

timm models already have ``forward_features`` / ``forward_head`` / ``reset_classifier``; the adapter
forwards to them, adds :meth:`~vislab.models.classify.base.Classifier.feature_pyramid` from timm's
``feature_info``, and never downloads weights (``pretrained=False`` always).

Example:
    >>> import torch
    >>> m = create_timm("resnet10t", num_classes=4)
    >>> m(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 4])
"""

from __future__ import annotations

from typing import Any

import timm
import torch
from torch import nn

from vislab.core.errors import ModelError, did_you_mean
from vislab.models.registry import MODELS
from vislab.models.classify.base import Classifier, check_stem


class TimmClassifier(Classifier):
    """Wraps a timm classifier; its modules live under ``self.model``."""

    def __init__(self, model: nn.Module, drop_rate: float = 0.0):
        super().__init__()
        self.model = model
        self.num_features = int(model.num_features)
        self.num_classes = int(getattr(model, "num_classes", 0))
        self.drop_rate = drop_rate
        info = getattr(model, "feature_info", None) or []
        names = [f"model.{f['module']}" for f in info if isinstance(f, dict) and f.get("module")]
        self.feature_modules = tuple(n for n in names if _has(self, n))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_features(x)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.model.forward_head(x, pre_logits=pre_logits)

    def reset_classifier(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.model.reset_classifier(num_classes)

    def get_classifier(self) -> nn.Module:
        return self.model.get_classifier()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def _has(module: nn.Module, name: str) -> bool:
    try:
        module.get_submodule(name)
        return True
    except AttributeError:
        return False


def create_timm(name: str, num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0, **kwargs: Any) -> TimmClassifier:
    """Build timm model ``name`` (randomly initialised) wrapped in :class:`TimmClassifier`.

    Args:
        name: a timm model name, e.g. ``convnext_tiny`` (``timm.list_models()`` lists them).
        num_classes, in_chans, drop_rate: as for every vislab classifier.
        stem: only ``"imagenet"``: timm models have their own stems.
        **kwargs: passed to ``timm.create_model`` (e.g. ``img_size=64`` for a ViT).
    """
    if check_stem(stem) != "imagenet":
        raise ModelError(f"timm:{name}: expected stem='imagenet' (timm models keep their own stem), got {stem!r}")
    if kwargs.pop("pretrained", False):
        raise ModelError(f"timm:{name}: expected pretrained=False (vislab never downloads weights), got pretrained=True")
    if not timm.is_model(name):
        raise ModelError(f"unknown timm model '{name}'{did_you_mean(name, timm.list_models(name[:3] + '*'))}; expected a name from timm.list_models()")
    model = timm.create_model(name, pretrained=False, num_classes=num_classes, in_chans=in_chans, drop_rate=drop_rate, **kwargs)
    return TimmClassifier(model, drop_rate)


MODELS.register_prefix("timm", create_timm)
