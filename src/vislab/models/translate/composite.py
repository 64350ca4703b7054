"""The models of a translation run in one module: ``translator({"G": [name, args], "D": [name, args]})`` builds each
registered network by name into an ``nn.ModuleDict`` -- what a checkpoint stores and ``load_model`` rebuilds
(pix2pix: G and D; CycleGAN: G_AB, G_BA, D_A, D_B; a plain super-resolution model: G alone).

Example:
    >>> m = translator({"G": ["dncnn", {"in_chans": 1, "depth": 3, "width": 4}]})
    >>> list(m), m["G"](__import__("torch").zeros(1, 1, 8, 8)).shape
    (['G'], torch.Size([1, 1, 8, 8]))
"""

from __future__ import annotations

from typing import Any

from torch import nn

from vislab.core.errors import ModelError
from vislab.models.registry import MODELS, register_model


@register_model(task="translate", family="composite")
def translator(nets: dict[str, Any]) -> nn.ModuleDict:
    """An ``nn.ModuleDict`` of registered networks: ``{name: [registered model, its keyword arguments]}``."""
    if not isinstance(nets, dict) or not nets:
        raise ModelError(f"translator: expected a dict of networks {{name: [model, args]}}, got {nets!r}")
    out = {}
    for key, spec in nets.items():
        if not isinstance(spec, list | tuple) or len(spec) != 2 or not isinstance(spec[1], dict):
            raise ModelError(f"translator: expected [model name, argument dict] for '{key}', got {spec!r}")
        out[key] = MODELS.build(spec[0], **spec[1])
    return nn.ModuleDict(out)
