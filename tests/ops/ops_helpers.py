"""Shared checks for the vislab.ops tests (kornia style): backends agree, module == function,
batched == unbatched, gradcheck in float64. Imported by the test files of this folder."""

from __future__ import annotations

import numpy as np
import torch

from vislab.ops import backend


def rand(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(*shape, generator=g, dtype=dtype)


def smooth(*shape: int, seed: int = 0) -> torch.Tensor:
    """A random image blurred a little, so interpolation differences stay small."""
    import torch.nn.functional as F

    x = rand(*shape, seed=seed)
    b, c, h, w = x.shape
    k = torch.ones(1, 1, 3, 3) / 9
    return F.conv2d(F.pad(x.reshape(b * c, 1, h, w), (1, 1, 1, 1), mode="replicate"), k).reshape(b, c, h, w)


def run_both(fn, x, *args, **kwargs):
    """(OpenCV-path output, torch-path output) for a CPU float32 input."""
    with backend("opencv"):
        a = fn(x, *args, **kwargs)
    with backend("torch"):
        b = fn(x, *args, **kwargs)
    return a, b


def hwc(t: torch.Tensor) -> np.ndarray:
    """(C, H, W) or (1, C, H, W) tensor -> contiguous (H, W, C) numpy float32."""
    t = t[0] if t.ndim == 4 else t
    return np.ascontiguousarray(t.detach().permute(1, 2, 0).numpy())


def assert_close(a, b, atol: float = 1e-5, rtol: float = 0.0, msg: str = "") -> None:
    a = torch.as_tensor(np.asarray(a) if not isinstance(a, torch.Tensor) else a).double()
    b = torch.as_tensor(np.asarray(b) if not isinstance(b, torch.Tensor) else b).double()
    assert a.shape == b.shape, f"{msg} shapes {tuple(a.shape)} != {tuple(b.shape)}"
    err = (a - b).abs().max().item() if a.numel() else 0.0
    assert torch.allclose(a, b, atol=atol, rtol=rtol), f"{msg} max abs diff {err:.3g} > {atol}"


def check_batched(fn, x, *args, atol: float = 1e-5, **kwargs) -> None:
    """fn on the batch == fn on each image, and a (C, H, W) input gives a (C, H, W) output."""
    full = fn(x, *args, **kwargs)
    for i in range(x.shape[0]):
        assert_close(full[i:i + 1], fn(x[i:i + 1], *args, **kwargs), atol, 1e-5, msg="batched vs single")
    assert_close(full[0], fn(x[0], *args, **kwargs), atol, 1e-5, msg="(C, H, W) input")


def check_gradcheck(fn, x, *args, **kwargs) -> None:
    x64 = x.double().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: fn(t, *args, **kwargs), (x64,), eps=1e-6, atol=1e-4, fast_mode=True)
