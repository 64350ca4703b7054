"""Dense optical flow of a whole video, for two-stream networks: Farneback from :mod:`vislab.ops.flow` (OpenCV, CPU)
or torchvision's RAFT-small from a local weights file (never downloaded). Computed once per video and cached
(:class:`~vislab.data.video.cache.VideoCache`) as float16 ``(T-1, 2, H, W)``: ``(dx, dy)`` in pixels from frame t to t+1.

Example:
    >>> import numpy as np
    >>> frames = np.zeros((3, 16, 16, 1), np.uint8)
    >>> video_flow(frames).shape
    (2, 2, 16, 16)
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from vislab.core.errors import ConfigError, DataError

FLOW_METHODS = ("farneback", "raft")


def video_flow(frames: np.ndarray, method: str = "farneback", raft_weights: str = "", chunk: int = 64) -> np.ndarray:
    """Flow between each pair of consecutive frames of ``(T, H, W, C)`` uint8 frames -> ``(T-1, 2, H, W)`` float16."""
    if frames.shape[0] < 2:
        raise DataError(f"optical flow: expected a video of at least 2 frames, got {frames.shape[0]}")
    if method not in FLOW_METHODS:
        raise ConfigError(f"--flow: expected one of {', '.join(FLOW_METHODS)}, got '{method}'")
    x = torch.from_numpy(np.array(frames, dtype=np.uint8)).permute(0, 3, 1, 2).float() / 255.0  # (T, C, H, W); a copy: cached frames are read-only
    out = []
    raft = _raft(raft_weights) if method == "raft" else None
    for s in range(0, x.shape[0] - 1, chunk):
        a, b = x[s : s + chunk], x[s + 1 : s + chunk + 1]
        a = a[: len(b)]
        if raft is None:
            from vislab.ops.flow import farneback

            out.append(farneback(a, b))
        else:
            out.append(_raft_flow(raft, a, b))
    return torch.cat(out).numpy().astype(np.float16)


def clip_flow(flow: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """The flow between a clip's consecutive sampled frames ``idx[j] -> idx[j+1]``, from a video's per-step flow
    ``flow`` ``(F-1, 2, H, W)`` (step k: frame k -> k+1): the sum of the steps between them -- exact for a translation,
    the usual approximation of the composed motion otherwise; 0 for a repeated frame (``--pad repeat``) and for a
    jump backwards (``--pad loop``'s wrap). Returns ``(len(idx) - 1, 2, H, W)`` float32.

    Example:
        >>> f = np.ones((5, 2, 1, 1), np.float16)  # one pixel moving (1, 1) per step
        >>> clip_flow(f, np.array([0, 2, 4, 4, 1]))[:, 0, 0, 0].tolist()
        [2.0, 2.0, 0.0, 0.0]
    """
    out = np.zeros((max(len(idx) - 1, 0), *flow.shape[1:]), np.float32)
    for j in range(len(idx) - 1):
        a, b = int(idx[j]), min(int(idx[j + 1]), len(flow))
        if b > a:
            out[j] = np.asarray(flow[a:b], dtype=np.float32).sum(0)
    return out


_RAFT_CACHE: dict[str, torch.nn.Module] = {}


def _raft(weights: str) -> torch.nn.Module:
    """torchvision's RAFT-small with the state dict in ``weights`` (a .pth read with ``weights_only`` or .safetensors)."""
    if not weights:
        raise ConfigError("--flow raft: expected --raft-weights FILE (torchvision's raft_small state dict), got none; "
                          "vislab never downloads weights")
    if weights in _RAFT_CACHE:
        return _RAFT_CACHE[weights]
    from torchvision.models.optical_flow import raft_small

    p = Path(weights)
    if not p.is_file():
        raise ConfigError(f"--raft-weights: expected a file, got '{weights}' (not found)")
    if p.suffix == ".safetensors":
        from safetensors.torch import load_file

        sd = load_file(str(p))
    else:
        sd = torch.load(p, map_location="cpu", weights_only=True)
    model = raft_small(weights=None)
    try:
        model.load_state_dict(sd)
    except RuntimeError as e:
        raise ConfigError(f"--raft-weights {weights}: expected torchvision raft_small weights, got a state dict that does not fit "
                          f"({str(e).splitlines()[0]})") from None
    _RAFT_CACHE[weights] = model.eval()
    return _RAFT_CACHE[weights]


@torch.no_grad()
def _raft_flow(model: torch.nn.Module, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """RAFT on ``(B, C, H, W)`` [0, 1] frames: gray made RGB, scaled to [-1, 1], padded to a multiple of 8."""
    import torch.nn.functional as F

    if a.shape[1] == 1:
        a, b = a.expand(-1, 3, -1, -1), b.expand(-1, 3, -1, -1)
    h0, w0 = a.shape[-2:]
    if min(h0, w0) < 128:  # RAFT's correlation pyramid needs >= 128 px: upsample, then bring the flow back to scale
        s = 128 / min(h0, w0)
        a = F.interpolate(a, scale_factor=s, mode="bilinear", align_corners=False)
        b = F.interpolate(b, scale_factor=s, mode="bilinear", align_corners=False)
    h, w = a.shape[-2:]
    ph, pw = (-h) % 8, (-w) % 8
    a = F.pad(a * 2 - 1, (0, pw, 0, ph), mode="replicate")
    b = F.pad(b * 2 - 1, (0, pw, 0, ph), mode="replicate")
    flow = model(a, b, num_flow_updates=12)[-1][..., :h, :w].float()
    if (h, w) != (h0, w0):
        flow = F.interpolate(flow, size=(h0, w0), mode="bilinear", align_corners=False)
        flow = flow * torch.tensor([w0 / w, h0 / h]).view(1, 2, 1, 1)
    return flow
