"""The model registry: every model family registers its builders here, by decorator.

Looking a name up loads the families first (each module of ``vislab/models/<family>/`` registers on import), so
``import vislab.models.registry`` stays light and ``vislab --help`` does not import torchvision or timm.

Example:
    >>> "resnet18" in MODELS, MODELS.get("unet").task
    (True, 'segment')
"""

from __future__ import annotations

from typing import Any

from vislab.core.errors import ModelError
from vislab.core.registry import Registry


FAMILIES = ("classify", "segment", "detect", "generate")  # the subpackages of vislab.models that hold models


def _load_families() -> None:
    import importlib
    import pkgutil

    # Every module of a family package registers its models on import: adding a family is adding a file.
    for family in FAMILIES:
        pkg = importlib.import_module(f"vislab.models.{family}")
        for m in pkgutil.iter_modules(pkg.__path__):
            if not m.name.startswith("_"):
                importlib.import_module(f"{pkg.__name__}.{m.name}")


MODELS = Registry("model", ModelError, loader=_load_families)
register_model = MODELS.register


def list_models(pattern: str = "*", task: str | None = None) -> list[str]:
    """Names of registered models, e.g. ``list_models('resnet*', task='classify')``."""
    return MODELS.list(pattern, task)


def create_model(name: str, **kwargs: Any):
    """Build a registered model by name; ``timm:<name>`` builds any timm model."""
    return MODELS.build(name, **kwargs)
