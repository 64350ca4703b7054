"""SPP-net (He et al., 2014): a conv backbone + spatial pyramid pooling, so any input size gives one vector.

The paper's classification net "ZF-5 + SPP": ZFNet's five conv layers (no last pool), a 4-level
pyramid {6x6, 3x3, 2x2, 1x1} of max pools (50 bins x 256 channels = 12800 features), fc6 and fc7
with 4096 units, and the classifier. Because the pyramid always gives 50 bins, the network takes
images of any size >= its minimum *without resizing*: the paper trains on 180 and 224 alternately.

The CIFAR variant uses ZFNet's CIFAR conv layers (3x3 convs, 32 -> 8), a {4, 2, 1} pyramid and
1024-wide hidden layers.

Example:
    >>> import torch
    >>> m = sppnet(num_classes=5, stem="cifar").eval()
    >>> [tuple(m(torch.zeros(1, 3, s, s + 3)).shape) for s in (24, 32, 40)]
    [(1, 5), (1, 5), (1, 5)]
"""

from __future__ import annotations

from vislab.models.registry import register_model
from vislab.models.classify.alexnet import _fc, zfnet_features
from vislab.models.classify.base import ConvFCClassifier, check_stem, init_conv_fc
from vislab.models.layers import SpatialPyramidPool


class SPPNet(ConvFCClassifier):
    """ConvFCClassifier whose ``pool`` is a :class:`~vislab.models.layers.SpatialPyramidPool`."""

    def __init__(self, in_chans: int, stem: str, num_classes: int, drop_rate: float, levels: tuple[int, ...] | None = None):
        check_stem(stem)
        if levels is None:
            levels = (6, 3, 2, 1) if stem == "imagenet" else (4, 2, 1)
        hidden = 4096 if stem == "imagenet" else 1024
        spp = SpatialPyramidPool(levels, "max")  # (B, 256, h, w) -> (B, 256 * bins), any h, w
        super().__init__(zfnet_features(in_chans, stem, last_pool=False), spp, _fc(256 * spp.bins(), hidden), hidden, num_classes, drop_rate)
        init_conv_fc(self)


@register_model(task="classify", family="sppnet", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32), min_size=21, variable_size=True)
def sppnet(
    num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0, levels: tuple[int, ...] | None = None
) -> SPPNet:
    """SPP-net (He et al., 2014), ZF-5 + 4-level pyramid: fixed-length output for any input size."""
    return SPPNet(in_chans, stem, num_classes, drop_rate, levels)
