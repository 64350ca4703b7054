"""Model families. Importing this package registers every model in :data:`vislab.core.registry.MODELS`.

Classifier builders share one signature::

    fn(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0, **kw) -> nn.Module

``stem="cifar"`` gives the small-input variant (32x32 images: no early downsampling); every classifier
exposes ``forward_features``, ``forward_head``, ``reset_classifier`` (see :class:`~vislab.models.base.Classifier`).
"""

import importlib
import pkgutil

from vislab.core.registry import create_model, list_models, register_model

# Every module in this package registers its models on import: adding a family is adding a file.
for _m in pkgutil.iter_modules(__path__):
    if not _m.name.startswith("_") and _m.name not in ("base", "layers"):
        importlib.import_module(f"{__name__}.{_m.name}")

__all__ = ["create_model", "list_models", "register_model"]
