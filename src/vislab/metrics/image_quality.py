"""How close an output image is to its target: PSNR and SSIM (with the super-resolution conventions: Y channel, border
crop), CIE L*a*b* conversions and the ab error of colourization, Hasler & Süsstrunk colourfulness, the cycle error of
unpaired translation and LPIPS where its backbone weights are already on disk.

Images are float tensors ``(B, C, H, W)`` in [0, 1]; every metric returns one number per image, a ``(B,)`` float
tensor, computed in fp32 even under autocast (float64 inputs stay float64). The numbers follow the reference
implementations: PSNR and SSIM as ``skimage.metrics`` (SSIM averaged over the valid part of the map, as Wang et al.'s
MATLAB code and skimage do), Y as MATLAB's ``rgb2ycbcr``, Lab as ``skimage.color.rgb2lab`` / ``lab2rgb``.

:class:`ImageQuality` sums per-image values over batches and processes, so the means do not depend on how many
processes evaluated.

Example:
    >>> import torch
    >>> g = torch.Generator().manual_seed(0)
    >>> a = torch.rand(2, 3, 16, 16, generator=g)
    >>> psnr(a, a).tolist(), ssim(a, a).tolist()
    ([100.0, 100.0], [1.0, 1.0])
    >>> b = (a + 0.1).clamp(0, 1)
    >>> bool((psnr(a, b) < 25).all()), bool((ssim(a, b) < 1).all())
    (True, True)
    >>> colorfulness(torch.full((1, 3, 8, 8), 0.5)).tolist()
    [0.0]
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping

import torch
from torch import Tensor

from vislab.core.dist import all_reduce_sum
from vislab.core.errors import ShapeError

# The PSNR cap: the mse, relative to data_range ** 2, is clamped at this (identical images give 100 dB, not inf).
MSE_FLOOR = 1e-10


def _fp(x: Tensor) -> Tensor:
    """``x`` as a float tensor for the computation: float64 stays float64, everything else becomes fp32."""
    return x if x.dtype == torch.float64 else x.float()


def _check_images(where: str, x: Tensor) -> None:
    if x.ndim != 4:
        raise ShapeError(where, "images (B, C, H, W)", tuple(x.shape))


def _check_pair(where: str, a: Tensor, b: Tensor) -> None:
    _check_images(where, a)
    if a.shape != b.shape:
        raise ShapeError(where, f"two images of one shape {tuple(a.shape)}", tuple(b.shape))


def _crop(x: Tensor, border: int, where: str) -> Tensor:
    if border < 0:
        raise ValueError(f"{where}: expected crop_border >= 0, got {border}")
    if border == 0:
        return x
    if min(x.shape[-2:]) <= 2 * border:
        raise ShapeError(where, f"images larger than 2 * crop_border = {2 * border} pixels", tuple(x.shape))
    return x[..., border:-border, border:-border]


def _prepare(where: str, a: Tensor, b: Tensor, y_channel: bool, crop_border: int) -> tuple[Tensor, Tensor]:
    """Both images in fp32, converted to Y if asked, then cropped: the order of the SR evaluation scripts."""
    _check_pair(where, a, b)
    a, b = _fp(a), _fp(b)
    if y_channel:
        a, b = rgb_to_y(a), rgb_to_y(b)
    return _crop(a, crop_border, where), _crop(b, crop_border, where)


# --------------------------------------------------------------------------------------------
# Luma, PSNR, SSIM
# --------------------------------------------------------------------------------------------
def rgb_to_y(x: Tensor) -> Tensor:
    """ITU-R BT.601 luma of RGB in [0, 1] as MATLAB's ``rgb2ycbcr`` (and the SR papers): ``(B, 1, H, W)``.

    ``Y = (16 + 65.481 R + 128.553 G + 24.966 B) / 255``, so Y lies in [16/255, 235/255]. A 1-channel input is
    returned unchanged (it already is the luma).
    """
    _check_images("rgb_to_y", x)
    if x.shape[1] == 1:
        return x
    if x.shape[1] != 3:
        raise ShapeError("rgb_to_y", "(B, 3, H, W) RGB or (B, 1, H, W) gray", tuple(x.shape))
    with torch.autocast(x.device.type, enabled=False):
        x = _fp(x)
        w = torch.tensor([65.481, 128.553, 24.966], dtype=x.dtype, device=x.device)
        return (16.0 + torch.einsum("bchw,c->bhw", x, w)).unsqueeze(1) / 255.0


def psnr(a: Tensor, b: Tensor, data_range: float = 1.0, y_channel: bool = False, crop_border: int = 0) -> Tensor:
    """Per-image PSNR in dB, ``10 log10(data_range^2 / mse)`` with the mse over C, H, W: ``(B,)``.

    ``y_channel`` compares the BT.601 luma (:func:`rgb_to_y`) instead of RGB, ``crop_border`` removes that many pixels
    on each side first (the SR convention: crop = scale). The mse relative to ``data_range ** 2`` is clamped at
    :data:`MSE_FLOOR` = 1e-10, so identical images give 100 dB instead of inf (means stay finite).
    """
    with torch.autocast(a.device.type, enabled=False):
        a, b = _prepare("psnr", a, b, y_channel, crop_border)
        mse = (a - b).pow(2).flatten(1).mean(1) / data_range**2
        return 10 * torch.log10(1.0 / mse.clamp_min(MSE_FLOOR))


def _gauss_size(sigma: float) -> int:
    """The Gaussian window of skimage / torchmetrics: truncated at 3.5 sigma."""
    return 2 * int(3.5 * sigma + 0.5) + 1


def ssim(a: Tensor, b: Tensor, data_range: float = 1.0, y_channel: bool = False, crop_border: int = 0,
         gaussian: bool = True, sigma: float = 1.5, win_size: int = 11) -> Tensor:
    """Per-image SSIM (Wang et al. 2004, K1 = 0.01, K2 = 0.03, population covariances): ``(B,)``.

    ``gaussian=True`` weighs the window with a Gaussian of std ``sigma``, truncated at 3.5 sigma (an 11 x 11 window for
    sigma = 1.5, as skimage with ``gaussian_weights=True`` and torchmetrics; ``win_size`` is then not used).
    ``gaussian=False`` uses a uniform ``win_size`` x ``win_size`` window (odd). The map is torchmetrics'
    (``structural_similarity_index_measure``), averaged over its valid part only, the pixels whose window lies
    inside the image, as Wang et al.'s MATLAB code and skimage do (torchmetrics itself also averages the border
    pixels, computed from reflect-padded windows). Colour images: the mean over the channels.

    Images smaller than the window get the largest odd window that fits, with sigma shrunk in proportion (skimage
    refuses them); ``y_channel`` and ``crop_border`` as in :func:`psnr`.
    """
    from torchmetrics.functional.image import structural_similarity_index_measure

    if not gaussian and (win_size < 1 or win_size % 2 == 0):
        raise ValueError(f"ssim: expected an odd win_size >= 1, got {win_size}")
    if gaussian and sigma <= 0:
        raise ValueError(f"ssim: expected sigma > 0, got {sigma}")
    with torch.autocast(a.device.type, enabled=False):
        a, b = _prepare("ssim", a, b, y_channel, crop_border)
        size = _gauss_size(sigma) if gaussian else win_size
        fits = min(a.shape[-2:])
        if size > fits:  # shrink the window to the largest odd size that fits, sigma in proportion
            new = fits if fits % 2 else fits - 1
            sigma = sigma * new / size
            while gaussian and _gauss_size(sigma) > new:
                sigma *= 0.99
            size = new
        _, full = structural_similarity_index_measure(a, b, gaussian_kernel=gaussian, sigma=sigma, kernel_size=size,
                                                      data_range=data_range, reduction="none", return_full_image=True)
        pad = (size - 1) // 2
        if pad:
            full = full[..., pad:-pad, pad:-pad]
        return full.flatten(1).mean(1)


# --------------------------------------------------------------------------------------------
# CIE L*a*b*
# --------------------------------------------------------------------------------------------
# sRGB (linear) -> XYZ and the D65 2° white, as skimage.color.
def rgb_to_lab(x: Tensor) -> Tensor:
    """sRGB in [0, 1] (D65) to CIE L*a*b* in fp32 outside autocast: :func:`vislab.ops.color.rgb_to_lab`
    (``skimage.color.rgb2lab``'s formulas; differentiable, the piecewise branches are clamped)."""
    from vislab.ops.color import rgb_to_lab as _rgb_to_lab

    _check_images("rgb_to_lab", x)
    if x.shape[1] != 3:
        raise ShapeError("rgb_to_lab", "(B, 3, H, W) RGB", tuple(x.shape))
    with torch.autocast(x.device.type, enabled=False):
        return _rgb_to_lab(_fp(x))


def lab_to_rgb(lab: Tensor) -> Tensor:
    """CIE L*a*b* (D65) to sRGB clamped to [0, 1], in fp32 outside autocast: :func:`vislab.ops.color.lab_to_rgb`
    (``skimage.color.lab2rgb``, which also clips a negative Z to 0 first)."""
    from vislab.ops.color import lab_to_rgb as _lab_to_rgb

    _check_images("lab_to_rgb", lab)
    if lab.shape[1] != 3:
        raise ShapeError("lab_to_rgb", "(B, 3, H, W) Lab", tuple(lab.shape))
    with torch.autocast(lab.device.type, enabled=False):
        return _lab_to_rgb(_fp(lab))


def ab_error(pred_lab: Tensor, true_lab: Tensor) -> Tensor:
    """Per-image mean Euclidean distance in the ab plane (ab units), the colourization error: ``(B,)``.

    Inputs are Lab ``(B, 3, H, W)`` (L is ignored) or ab ``(B, 2, H, W)``, both of one shape.
    """
    _check_pair("ab_error", pred_lab, true_lab)
    if pred_lab.shape[1] not in (2, 3):
        raise ShapeError("ab_error", "(B, 3, H, W) Lab or (B, 2, H, W) ab", tuple(pred_lab.shape))
    with torch.autocast(pred_lab.device.type, enabled=False):
        p, t = _fp(pred_lab)[:, -2:], _fp(true_lab)[:, -2:]
        return torch.linalg.vector_norm(p - t, dim=1).flatten(1).mean(1)


# --------------------------------------------------------------------------------------------
# Colourfulness, cycle error
# --------------------------------------------------------------------------------------------
def colorfulness(x: Tensor) -> Tensor:
    """Hasler & Süsstrunk (2003) colourfulness of RGB in [0, 1], on the 0..255 scale: ``(B,)``.

    ``M = sqrt(std_rg^2 + std_yb^2) + 0.3 sqrt(mean_rg^2 + mean_yb^2)`` with ``rg = R - G``, ``yb = (R + G) / 2 - B``
    and population stds over the pixels. Gray images (and 1-channel inputs) give 0; about 15 is "slightly
    colourful", above 100 "extremely colourful" in the paper's scale.
    """
    _check_images("colorfulness", x)
    if x.shape[1] == 1:
        return x.new_zeros(len(x), dtype=_fp(x).dtype)
    if x.shape[1] != 3:
        raise ShapeError("colorfulness", "(B, 3, H, W) RGB or (B, 1, H, W) gray", tuple(x.shape))
    with torch.autocast(x.device.type, enabled=False):
        r, g, b = (_fp(x) * 255).flatten(2).unbind(1)
        rg, yb = r - g, 0.5 * (r + g) - b
        std = (rg.var(1, correction=0) + yb.var(1, correction=0)).sqrt()
        mean = (rg.mean(1).pow(2) + yb.mean(1).pow(2)).sqrt()
        return std + 0.3 * mean


def cycle_error(x: Tensor, x_back: Tensor) -> Tensor:
    """Per-image mean absolute error of an image and its round trip (CycleGAN's A -> B -> A): ``(B,)``."""
    _check_pair("cycle_error", x, x_back)
    with torch.autocast(x.device.type, enabled=False):
        return (_fp(x) - _fp(x_back)).abs().flatten(1).mean(1)


# --------------------------------------------------------------------------------------------
# LPIPS (only from weights on disk)
# --------------------------------------------------------------------------------------------
# LPIPS backbone -> (torchvision builder, its weights enum); the lin layers ship inside torchmetrics.
_LPIPS_NETS = {"alex": ("alexnet", "AlexNet_Weights"), "vgg": ("vgg16", "VGG16_Weights"),
               "squeeze": ("squeezenet1_1", "SqueezeNet1_1_Weights")}


def _lpips_files(net: str) -> tuple[str, str, str]:
    """(backbone weights file, where torchvision looks for it, torchmetrics' lin-layer file) of an LPIPS net."""
    if net not in _LPIPS_NETS:
        raise ValueError(f"lpips: expected net one of {sorted(_LPIPS_NETS)}, got {net!r}")
    import torchvision
    from torchmetrics.functional.image import lpips as tm_lpips

    url = getattr(torchvision.models, _LPIPS_NETS[net][1]).DEFAULT.url
    backbone = os.path.join(torch.hub.get_dir(), "checkpoints", os.path.basename(url))  # as load_state_dict_from_url
    lin = os.path.join(os.path.dirname(tm_lpips.__file__), "lpips_models", f"{net}.pth")
    return os.path.basename(url), backbone, lin


def lpips_status(net: str = "alex") -> str:
    """One line saying whether LPIPS with backbone ``net`` can run, and if not which file is missing and where."""
    try:
        name, backbone, lin = _lpips_files(net)
    except ImportError as e:
        return f"LPIPS ({net}) unavailable: {e}"
    if not os.path.isfile(lin):
        return f"LPIPS ({net}) unavailable: torchmetrics' lin-layer weights {lin} are missing (reinstall torchmetrics)"
    if not os.path.isfile(backbone):
        return (f"LPIPS ({net}) unavailable: torchvision's {name} is not in {os.path.dirname(backbone)} "
                f"(copy it there; vislab never downloads weights)")
    return f"LPIPS ({net}) ready: backbone {backbone}"


def load_lpips(net: str = "alex", device: str | torch.device = "cpu") -> Callable[[Tensor, Tensor], Tensor] | None:
    """A callable ``(a, b) -> (B,)`` of LPIPS distances (Zhang et al. 2018) for RGB in [0, 1], or None when the
    backbone weights are not on disk (:func:`lpips_status` says which file is missing).

    Never downloads: torchmetrics' ``LearnedPerceptualImagePatchSimilarity`` takes its lin layers from files inside the
    torchmetrics package and the backbone from torchvision's pretrained weights, which
    ``torch.hub.load_state_dict_from_url`` reads from ``torch.hub.get_dir()/checkpoints/<file>`` and fetches only when
    that file is missing, so the metric is built only once the file is there. 1-channel inputs are repeated to RGB;
    the network runs in fp32 even under autocast, gradients flow to the inputs.
    """
    try:
        _, backbone, lin = _lpips_files(net)
        from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity
    except ImportError:
        return None
    if not (os.path.isfile(backbone) and os.path.isfile(lin)):
        return None
    model = LearnedPerceptualImagePatchSimilarity(net_type=net, normalize=True).to(device).eval()  # type: ignore[arg-type]

    def lpips(a: Tensor, b: Tensor) -> Tensor:
        _check_pair("lpips", a, b)
        if a.shape[1] not in (1, 3):
            raise ShapeError("lpips", "(B, 3, H, W) RGB or (B, 1, H, W) gray", tuple(a.shape))
        dev = next(model.net.parameters()).device
        with torch.autocast(dev.type, enabled=False):
            a, b = (t.to(dev).float().expand(-1, 3, -1, -1) for t in (a, b))
            return model.net(a, b, normalize=True).flatten()  # the per-image values (the metric's update squeezes B = 1)

    return lpips


# --------------------------------------------------------------------------------------------
# Accumulation over batches and processes
# --------------------------------------------------------------------------------------------
class ImageQuality:
    """Sums and counts of named per-image values over batches and processes; :meth:`compute` gives their means.

    ``names`` fixes the metrics from the start, so that :meth:`sync` works even on a process that saw no batch;
    without it a name appears at its first :meth:`update` (then every process must have seen the same names).
    Non-finite values are kept (PSNR is finite thanks to its cap).

    Example:
        >>> import torch
        >>> q = ImageQuality()
        >>> q.update({"psnr": torch.tensor([30.0, 32.0])})
        >>> q.update({"psnr": torch.tensor([34.0])})
        >>> q.sync(); q.compute()
        {'psnr': 32.0}
    """

    def __init__(self, names: list[str] | None = None) -> None:
        self.sums: dict[str, float] = {k: 0.0 for k in names or []}
        self.counts: dict[str, float] = {k: 0.0 for k in names or []}
        self._synced: tuple[dict[str, float], dict[str, float]] | None = None

    def update(self, values: Mapping[str, Tensor]) -> None:
        """Add per-image values ``{name: (B,) tensor}`` (a 0-d tensor counts as one image)."""
        for k, v in values.items():
            v = v.detach().double().flatten()
            self.sums[k] = self.sums.get(k, 0.0) + float(v.sum())
            self.counts[k] = self.counts.get(k, 0.0) + v.numel()
        self._synced = None

    def sync(self) -> None:
        """All-reduce the sums and counts over processes (the local ones: calling it twice does not double them)."""
        names = sorted(self.sums)
        t = all_reduce_sum(torch.tensor([self.sums[k] for k in names] + [self.counts[k] for k in names],
                                        dtype=torch.float64))
        n = len(names)
        self._synced = dict(zip(names, t[:n].tolist(), strict=True)), dict(zip(names, t[n:].tolist(), strict=True))

    def compute(self) -> dict[str, float]:
        """The mean of every name (over all processes after :meth:`sync`); NaN for a name with no values."""
        sums, counts = self._synced or (self.sums, self.counts)
        return {k: sums[k] / counts[k] if counts[k] else float("nan") for k in sorted(sums)}
