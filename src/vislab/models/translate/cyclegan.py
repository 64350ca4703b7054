"""CycleGAN's ResNet generator (Zhu et al., 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks"; the architecture of Johnson et al., 2016), layer for layer as ``ResnetGenerator`` in the
authors' code (junyanz/pytorch-CycleGAN-and-pix2pix).

``ReflectionPad(3), conv 7x7 (width), norm, ReLU`` -> ``n_down`` x ``[conv 3x3 s2 p1, norm, ReLU]`` doubling the
channels -> ``n_blocks`` residual blocks ``x + [ReflectionPad(1), conv 3x3, norm, ReLU, ReflectionPad(1), conv 3x3,
norm](x)`` -> ``n_down`` x ``[ConvTranspose 3x3 s2 p1 op1, norm, ReLU]`` halving them -> ``ReflectionPad(3), conv 7x7,
tanh``. ``norm="instance"`` is the reference's ``InstanceNorm2d(affine=False)``, with biases on the convs; with batch
norm the convs before it have none. 9 blocks (the 256 px setting; 6 at 128 px), 3 -> 3 channels, width 64: 11,378,179
parameters, as the reference prints. Inputs of any ``H, W`` divisible by ``2^n_down`` (and at least 2 px at the
bottleneck, for the reflection padding). Weights start N(0, 0.02) as in the reference.

Example:
    >>> import torch
    >>> g = resnet_gen(width=8, n_blocks=2)
    >>> y = g(torch.rand(2, 3, 20, 28) * 2 - 1)
    >>> y.shape, bool(y.abs().max() <= 1)
    (torch.Size([2, 3, 20, 28]), True)
"""

from __future__ import annotations

import torch
from torch import nn

from vislab.models.generate.blocks import check_ints, dcgan_init
from vislab.models.registry import register_model
from vislab.models.translate.pix2pix import (
    check_input,
    check_norm,
    conv_bias,
    norm_layer,
)


class ResnetBlock(nn.Module):
    """``x + [pad, conv3, norm, ReLU, pad, conv3, norm](x)`` with reflection padding."""

    def __init__(self, channels: int, norm: str):
        super().__init__()
        bias = conv_bias(norm)
        self.body = nn.Sequential(nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                  norm_layer(norm, channels), nn.ReLU(),
                                  nn.ReflectionPad2d(1), nn.Conv2d(channels, channels, 3, bias=bias),
                                  norm_layer(norm, channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class ResnetGenerator(nn.Module):
    """``(B, in_chans, H, W) -> (B, out_chans, H, W)`` in ``[-1, 1]``, ``H, W`` divisible by ``2^n_down``."""

    def __init__(self, in_chans: int = 3, out_chans: int = 3, width: int = 64, n_blocks: int = 9, n_down: int = 2,
                 norm: str = "instance"):
        super().__init__()
        where = type(self).__name__
        check_ints(where, in_chans=(in_chans, 1), out_chans=(out_chans, 1), width=(width, 1), n_blocks=(n_blocks, 0),
                   n_down=(n_down, 0))
        check_norm(where, norm)
        self.in_chans, self.out_chans, self.n_down, self.factor = in_chans, out_chans, n_down, 2**n_down
        bias = conv_bias(norm)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(in_chans, width, 7, bias=bias), norm_layer(norm, width),
                                   nn.ReLU()]
        ch = width
        for _ in range(n_down):
            layers += [nn.Conv2d(ch, 2 * ch, 3, 2, 1, bias=bias), norm_layer(norm, 2 * ch), nn.ReLU()]
            ch *= 2
        layers += [ResnetBlock(ch, norm) for _ in range(n_blocks)]
        for _ in range(n_down):
            layers += [nn.ConvTranspose2d(ch, ch // 2, 3, 2, 1, output_padding=1, bias=bias), norm_layer(norm, ch // 2),
                       nn.ReLU()]
            ch //= 2
        layers += [nn.ReflectionPad2d(3), nn.Conv2d(ch, out_chans, 7), nn.Tanh()]
        self.net = nn.Sequential(*layers)
        dcgan_init(self)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Reflection padding needs more pixels than it pads: 4 at full size (pad 3), 2 at the bottleneck (pad 1).
        check_input(type(self).__name__, x, self.in_chans, self.factor, max(4, 2 * self.factor))
        return self.net(x)


@register_model(task="translate", family="cyclegan")
def resnet_gen(in_chans: int = 3, out_chans: int = 3, width: int = 64, n_blocks: int = 9, n_down: int = 2,
               norm: str = "instance") -> nn.Module:
    """CycleGAN ResNet generator (9 blocks at 256 px, 6 at 128 px)."""
    return ResnetGenerator(in_chans, out_chans, width, n_blocks, n_down, norm)
