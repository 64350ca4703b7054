"""Classical image processing on tensors: ``(B, C, H, W)`` in, same kind out, OpenCV speed on CPU.

Every op is a function (``gaussian_blur(x, 5)``) with an ``nn.Module`` twin (``GaussianBlur(5)``). It
takes float ``(B, C, H, W)`` or ``(C, H, W)`` tensors on any device, numpy ``(H, W[, C])`` arrays
(uint8 or float) and PIL images, and returns the same kind. CPU float32 tensors that need no
gradient run on OpenCV plane by plane (no copies, a small thread pool); everything else runs the
differentiable torch implementation. :func:`backend` forces one (``with backend("torch"): ...``).

Submodules (importing one imports only what it needs): :mod:`~vislab.ops.filters`,
:mod:`~vislab.ops.edges`, :mod:`~vislab.ops.kernels`, :mod:`~vislab.ops.color`,
:mod:`~vislab.ops.intensity`, :mod:`~vislab.ops.geometry`, :mod:`~vislab.ops.morphology`,
:mod:`~vislab.ops.superpixels`, :mod:`~vislab.ops.refine` (CRF / superpixel refinement of class probabilities),
:mod:`~vislab.ops.flow`, :mod:`~vislab.ops.proposals`.

Example:
    >>> import torch
    >>> from vislab import ops
    >>> x = torch.rand(2, 3, 17, 11)
    >>> ops.sobel_magnitude(ops.rgb_to_gray(x)).shape
    torch.Size([2, 1, 17, 11])
"""

from vislab.ops._border import BORDERS
from vislab.ops._dispatch import backend, get_backend
from vislab.ops.color import *  # noqa: F403
from vislab.ops.color import __all__ as _color
from vislab.ops.edges import *  # noqa: F403
from vislab.ops.edges import __all__ as _edges
from vislab.ops.filters import *  # noqa: F403
from vislab.ops.filters import __all__ as _filters
from vislab.ops.geometry import *  # noqa: F403
from vislab.ops.geometry import __all__ as _geometry
from vislab.ops.intensity import *  # noqa: F403
from vislab.ops.intensity import __all__ as _intensity
from vislab.ops.kernels import *  # noqa: F403
from vislab.ops.kernels import __all__ as _kernels
from vislab.ops.morphology import *  # noqa: F403
from vislab.ops.morphology import __all__ as _morphology
from vislab.ops.flow import *  # noqa: F403
from vislab.ops.flow import __all__ as _flow
from vislab.ops.proposals import *  # noqa: F403
from vislab.ops.proposals import __all__ as _proposals
from vislab.ops.refine import *  # noqa: F403
from vislab.ops.refine import __all__ as _refine
from vislab.ops.superpixels import *  # noqa: F403
from vislab.ops.superpixels import __all__ as _superpixels

__all__ = ["BORDERS", "backend", "get_backend", *_filters, *_edges, *_kernels, *_color, *_intensity, *_geometry,
           *_morphology, *_superpixels, *_refine, *_flow, *_proposals]
