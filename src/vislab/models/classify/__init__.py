"""Classifiers, one file per architecture family; each module registers its builders in
:data:`vislab.models.registry.MODELS` on import (the registry imports them on the first lookup)."""
