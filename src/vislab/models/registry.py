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


def _load_families() -> None:
    import importlib
    import pkgutil

    import vislab.models as models

    # Every subpackage of vislab.models is a family; each of its modules registers its models on import:
    # adding a family is adding a folder, adding a model family is adding a file.
    for family in pkgutil.iter_modules(models.__path__):
        if family.ispkg and not family.name.startswith("_"):
            pkg = importlib.import_module(f"{models.__name__}.{family.name}")
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
