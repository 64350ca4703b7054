"""What does the network see? Summaries, filters, feature maps, CAMs and attributions.

``explain(model, images, methods=..., ...)`` writes every figure; the pieces live in
:mod:`~vislab.explain.summary`, :mod:`~vislab.explain.filters`, :mod:`~vislab.explain.feature_maps`,
:mod:`~vislab.explain.cam` and :mod:`~vislab.explain.plots`.
"""

from __future__ import annotations

from typing import Any

__all__ = ["explain"]


def explain(*args: Any, **kwargs: Any):
    """See :func:`vislab.explain.api.explain` (imported on first call: matplotlib and pytorch-grad-cam are heavy)."""
    from vislab.explain.api import explain as _explain

    return _explain(*args, **kwargs)
