"""Model families, registered in :data:`vislab.models.registry.MODELS` (loaded on the first lookup).

Classifier builders share one signature::

    fn(num_classes: int = 1000, in_chans: int = 3, stem: str = "imagenet", drop_rate: float = 0.0, **kw) -> nn.Module

``stem="cifar"`` gives the small-input variant (32x32 images: no early downsampling); every classifier
exposes ``forward_features``, ``forward_head``, ``reset_classifier`` (see :class:`~vislab.models.classify.base.Classifier`).
"""

from vislab.models.registry import MODELS, create_model, list_models, register_model

__all__ = ["MODELS", "create_model", "list_models", "register_model"]
