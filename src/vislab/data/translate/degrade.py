"""Input images made from clean ones on the fly: low resolution for super-resolution, noise and JPEG artefacts for
denoising, luminance for colorization.

Every random number is drawn by :func:`draw` for a *global* batch from its ``(seed, epoch, batch)`` generator and
then sliced per process, so N processes and a resumed run degrade every image exactly as one process does.
Images are float ``(B, C, H, W)`` in ``[0, 1]``; what comes out is quantised to 8-bit levels, as a real low-quality
image would be.

* ``bicubic``: antialiased bicubic downscaling by ``scale`` (PIL / MATLAB ``imresize``'s kernel).
* ``realesrgan``: one stage of Real-ESRGAN's synthetic degradations (Wang et al., 2021): a Gaussian blur of random
  width, a resize by a random method (area, bilinear, bicubic), Gaussian noise of random strength (colour or gray),
  JPEG compression at a random quality. The paper applies two such stages and sinc filters; one stage keeps small
  models trainable in minutes.
* ``gaussian`` / ``poisson`` / ``jpeg`` noise for denoising: ``level`` is the std on the 0..255 scale, the peak
  photon count, or the JPEG quality; ``0`` draws a level per image from a range (blind denoising).

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> x = torch.rand(2, 3, 16, 16)
    >>> p = draw("sr", "bicubic", 2, 0.0, 2, (3, 16, 16), g)
    >>> make_input("sr", "bicubic", 2, x, p).shape
    torch.Size([2, 3, 8, 8])
    >>> p = draw("denoise", "gaussian", 1, 25.0, 2, (3, 16, 16), g)
    >>> float((make_input("denoise", "gaussian", 1, x, p) - x).std()) > 0.05
    True
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

DEGRADATIONS = ("bicubic", "realesrgan")
NOISES = ("gaussian", "poisson", "jpeg")
BLIND = {"gaussian": (5.0, 50.0), "poisson": (5.0, 100.0), "jpeg": (10.0, 60.0)}  # level ranges when --noise-level 0
RESIZE_MODES = ("area", "bilinear", "bicubic")


def quantize(x: torch.Tensor) -> torch.Tensor:
    """Round ``[0, 1]`` values to the 256 levels of an 8-bit image."""
    return (x.clamp(0, 1) * 255).round() / 255


def downscale(x: torch.Tensor, scale: int, mode: str = "bicubic") -> torch.Tensor:
    """``x`` made ``scale`` times smaller (antialiased for bilinear / bicubic)."""
    h, w = x.shape[-2] // scale, x.shape[-1] // scale
    if mode == "area":
        return F.interpolate(x, size=(h, w), mode="area")
    return F.interpolate(x, size=(h, w), mode=mode, align_corners=False, antialias=True)


def upscale(x: torch.Tensor, scale: int) -> torch.Tensor:
    """Bicubic upscaling (the baseline every super-resolution model is compared with), clamped to ``[0, 1]``."""
    return F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False).clamp(0, 1)


def jpeg(x: torch.Tensor, quality: torch.Tensor) -> torch.Tensor:
    """Each image of ``x`` through a JPEG encode / decode at its quality (OpenCV's libjpeg, 4:2:0, on the CPU)."""
    import cv2
    import numpy as np

    u8 = (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    out = []
    for img, q in zip(u8, quality.tolist(), strict=True):
        bgr = img[:, :, ::-1] if img.shape[2] == 3 else img[:, :, 0]
        ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(bgr), [cv2.IMWRITE_JPEG_QUALITY, int(q)])
        dec = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        out.append(dec[:, :, ::-1].copy() if dec.ndim == 3 else dec[:, :, None])
    return (torch.from_numpy(np.stack(out)).permute(0, 3, 1, 2).float() / 255).to(x.device)


def gaussian_blur(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """Each image blurred with an isotropic Gaussian of its own ``sigma`` (pixels), reflect padding."""
    k = int(min(21, 2 * math.ceil(3 * float(sigma.max())) + 1))
    r = torch.arange(k, dtype=x.dtype, device=x.device) - k // 2
    kern = torch.exp(-r.view(1, -1) ** 2 / (2 * sigma.to(x).view(-1, 1) ** 2))
    kern = kern / kern.sum(1, keepdim=True)  # (B, k)
    b, c, h, w = x.shape
    y = F.pad(x.reshape(1, b * c, h, w), (k // 2,) * 4, mode="reflect")
    kh = kern.repeat_interleave(c, 0)
    y = F.conv2d(y, kh.view(b * c, 1, 1, k), groups=b * c)
    y = F.conv2d(y, kh.view(b * c, 1, k, 1), groups=b * c)
    return y.view(b, c, h, w)


def draw(task: str, kind: str, scale: int, level: float, n: int, shape: tuple[int, int, int], g: torch.Generator) -> dict[str, torch.Tensor]:
    """The random numbers degrading ``n`` images of ``shape`` (a global batch), from ``g``; slice them per process."""
    c, h, w = shape
    if task == "sr":
        if kind == "bicubic":
            return {}
        return {"sigma": 0.2 + 2.8 * torch.rand(n, generator=g), "mode": torch.randint(0, 3, (n,), generator=g),
                "noise": torch.randn((n, c, h // scale, w // scale), generator=g), "gray": torch.rand(n, generator=g) < 0.4,
                "std": (1 + 24 * torch.rand(n, generator=g)) / 255, "quality": torch.randint(30, 96, (n,), generator=g)}
    if task == "denoise":
        lo, hi = BLIND[kind]
        lv = torch.full((n,), float(level)) if level > 0 else lo + (hi - lo) * torch.rand(n, generator=g)
        p = {"level": lv}
        if kind == "gaussian":
            p["noise"] = torch.randn((n, c, h, w), generator=g)
        elif kind == "poisson":
            p["seed"] = torch.randint(0, 2**31 - 1, (n,), generator=g)
        return p
    return {}


def make_input(task: str, kind: str, scale: int, x: torch.Tensor, p: dict[str, torch.Tensor]) -> torch.Tensor:
    """The degraded version of clean images ``x`` (``[0, 1]``) with this process's share ``p`` of :func:`draw`'s numbers."""
    if task == "sr":
        if kind == "bicubic":
            return quantize(downscale(x, scale))
        y = gaussian_blur(x, p["sigma"])
        y = torch.cat([downscale(y[i:i + 1], scale, RESIZE_MODES[int(m)]) for i, m in enumerate(p["mode"].tolist())]) if len(y) else downscale(y, scale)
        nz = p["noise"].to(y)
        nz = torch.where(p["gray"].to(y.device).view(-1, 1, 1, 1), nz[:, :1].expand_as(nz), nz)
        y = y + p["std"].to(y).view(-1, 1, 1, 1) * nz
        return quantize(jpeg(y, p["quality"]) if len(y) else y)
    if task == "denoise":
        lv = p["level"].to(x)
        if kind == "gaussian":
            return quantize(x + lv.view(-1, 1, 1, 1) / 255 * p["noise"].to(x))
        if kind == "poisson":
            out = []
            for i, s in enumerate(p["seed"].tolist()):
                gi = torch.Generator(device="cpu").manual_seed(int(s))
                peak = float(lv[i])
                out.append(torch.poisson(x[i].cpu().float() * peak, generator=gi) / peak)
            return quantize(torch.stack(out).to(x)) if out else x
        return jpeg(x, lv.round().long())
    raise ValueError(f"make_input: expected task sr or denoise, got {task!r}")
