"""Vision Transformer (Dosovitskiy et al., 2021) on timm's ``VisionTransformer``: tiny / small / base.

The patch size is configurable. ImageNet variant: 224x224 input, 16x16 patches (196 tokens);
CIFAR variant: 32x32 input, 4x4 patches (64 tokens). Both accept other input sizes: the position
embedding is interpolated (timm's ``dynamic_img_size``).

``forward_features`` returns the normalised tokens ``(B, 1 + N, D)``; :meth:`ViTClassifier.tokens_to_map`
turns tokens into a ``(B, D, h, w)`` map (used by ``feature_pyramid`` and by Grad-CAM's reshape transform).

Example:
    >>> import torch
    >>> m = vit_tiny(num_classes=10, stem="cifar")
    >>> m(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> m.feature_pyramid(torch.zeros(1, 3, 32, 32))[-1].shape
    torch.Size([1, 192, 8, 8])
"""

from __future__ import annotations

import torch
from timm.models.vision_transformer import VisionTransformer

from vislab.core.errors import ShapeError
from vislab.models.classify.base import check_stem
from vislab.models.registry import register_model
from vislab.models.classify.timm_adapter import TimmClassifier


class ViTClassifier(TimmClassifier):
    """A timm ViT with token <-> map helpers; ``cam_layer`` is the last block's first norm."""

    def __init__(self, model: VisionTransformer, drop_rate: float = 0.0):
        super().__init__(model, drop_rate)
        depth = len(model.blocks)
        self.patch_size = tuple(model.patch_embed.patch_size)
        self.num_prefix_tokens = int(model.num_prefix_tokens)
        self.feature_modules = tuple(f"model.blocks.{i}" for i in sorted({depth // 4 - 1, depth // 2 - 1, 3 * depth // 4 - 1, depth - 1}))
        self.cam_layer = f"model.blocks.{depth - 1}.norm1"
        self._grid: tuple[int, int] | None = None

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:  # (B, C, H, W) -> (B, 1 + N, D)
        self._grid = (x.shape[-2] // self.patch_size[0], x.shape[-1] // self.patch_size[1])
        return self.model.forward_features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def tokens_to_map(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, prefix + h*w, D) tokens of the last forward -> (B, D, h, w) map (prefix tokens dropped)."""
        if self._grid is None:
            raise ShapeError("ViTClassifier.tokens_to_map", "a forward pass first (the token grid is taken from it)", "none")
        h, w = self._grid
        if tokens.ndim != 3 or tokens.shape[1] != self.num_prefix_tokens + h * w:
            raise ShapeError("ViTClassifier.tokens_to_map", f"(B, {self.num_prefix_tokens + h * w}, D)", tuple(tokens.shape))
        grid = tokens[:, self.num_prefix_tokens :]  # (B, h*w, D)
        return grid.reshape(tokens.shape[0], h, w, -1).permute(0, 3, 1, 2)

    def feature_pyramid(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Token maps after blocks at 1/4, 1/2, 3/4 and full depth: ``[(B, D, H/p, W/p)] * 4``."""
        return [self.tokens_to_map(t) for t in super().feature_pyramid(x)]


def _vit(dim: int, depth: int, heads: int, num_classes: int, in_chans: int, stem: str, drop_rate: float,
         patch_size: int | None, img_size: int | None) -> ViTClassifier:  # fmt: skip
    imagenet = check_stem(stem) == "imagenet"
    patch_size = patch_size or (16 if imagenet else 4)
    img_size = img_size or (224 if imagenet else 32)
    if img_size % patch_size:
        raise ShapeError("vit", f"img_size divisible by patch_size {patch_size}", img_size)
    model = VisionTransformer(
        img_size=img_size, patch_size=patch_size, in_chans=in_chans, num_classes=num_classes, embed_dim=dim, depth=depth,
        num_heads=heads, drop_rate=drop_rate, dynamic_img_size=True,
    )  # fmt: skip
    return ViTClassifier(model, drop_rate)


_META = dict(task="classify", family="vit", input_size=(3, 224, 224), cifar_input_size=(3, 32, 32), min_size=16)


@register_model(**_META)
def vit_tiny(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0,
             patch_size: int | None = None, img_size: int | None = None) -> ViTClassifier:  # fmt: skip
    """ViT-Ti (DeiT-Tiny shape): width 192, depth 12, 3 heads; 5.7M parameters at 224 / patch 16."""
    return _vit(192, 12, 3, num_classes, in_chans, stem, drop_rate, patch_size, img_size)


@register_model(**_META)
def vit_small(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0,
              patch_size: int | None = None, img_size: int | None = None) -> ViTClassifier:  # fmt: skip
    """ViT-S (DeiT-Small shape): width 384, depth 12, 6 heads; 22.1M parameters at 224 / patch 16."""
    return _vit(384, 12, 6, num_classes, in_chans, stem, drop_rate, patch_size, img_size)


@register_model(**_META)
def vit_base(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0,
             patch_size: int | None = None, img_size: int | None = None) -> ViTClassifier:  # fmt: skip
    """ViT-B (Dosovitskiy et al., 2021): width 768, depth 12, 12 heads; 86.6M parameters at 224 / patch 16."""
    return _vit(768, 12, 12, num_classes, in_chans, stem, drop_rate, patch_size, img_size)
