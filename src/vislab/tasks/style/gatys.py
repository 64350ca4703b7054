"""Neural style transfer by optimisation (Gatys, Ecker & Bethge 2016) and texture synthesis (Gatys et al. 2015).

The image's pixels are optimised so that its activations in a :class:`~vislab.tasks.shared.features.FeatureNet`
match the content image's at the content layers and its Gram matrices match the style image's at the style layers:

    loss = content_weight * content + style_weight * style + tv_weight * tv

with the *relative* losses of :mod:`vislab.tasks.shared.features` (each layer's squared error divided by its
target's squared size), and, by default (``normalize=True``), each layer's term further divided by its value for the
*other* image: the style loss is 1 for the content image and the content loss is 1 for the style image (resized to
the content's shape), every layer contributing equally. The two numbers then read the same in any network -- VGG,
the random network, a classify run, whose activation scales and Gram structure differ by orders of magnitude -- and
one set of weights balances them all: ``content_weight=1, style_weight=5`` (measured, 60 L-BFGS steps, with the
random network: on a 48x56 synthetic scene the style loss falls ~11x with the content loss at ~0.57, on a 64-96 px
photo (skimage's chelsea, styled by its ihc image) 25-40x at content ~0.6, the cat clearly recognisable; in an
untrained small_cnn / resnet18 classify backbone the same weights give 67x / 23x at content 0.47 / 0.33). Larger
``style_weight`` stylises more (10: 38x, content 0.65 on the photo). ``tv_weight=0.5``
(on the mean squared neighbour difference of the [-1, 1] pixels: ~0.01-0.02 for a natural image, ~1 for noise)
removes the pixel-level colour speckle that random features hardly see. ``normalize=False`` leaves the plain
relative losses (then the balance depends on the network). Gatys et al.'s alpha/beta of 1e-3..1e-4 is the same
trade-off in their unnormalised losses.

Optimisation: L-BFGS (the paper's: ``torch.optim.LBFGS`` with a strong-Wolfe line search, run in chunks of 10
iterations with the pixels clamped to [-1, 1] between chunks, its curvature memory kept) or Adam (``lr`` 0.05 in units
of the [-1, 1] pixel range, the pixels clamped after every update). ``steps`` counts gradient (function) evaluations
for both -- L-BFGS's line-search trials included, so it may finish its last line search a few evaluations past
``steps``; ``history`` has one record per evaluation. Between two clamps a penalty ``100 * mean(relu(|x| - 1)^2)``
keeps L-BFGS near the box (without it, measured, the clamp undid much of its progress; it is 0 for Adam).

Sizes: the style image is rescaled to the content image's *area*, keeping its own aspect ratio (Gram matrices are
spatial averages, so the two images need not have the same shape, and the style's strokes then have the same scale
relative to the result; ``style_scale`` multiplies its side). Each image must be at least
:func:`~vislab.tasks.shared.features.min_size` pixels per side for the deepest layer used.

Colour (``preserve_color``): Gatys et al. 2016, "Preserving color in neural artistic style transfer", luminance-only
transfer: the transfer runs on the luma Y (of YCbCr) of both images, the style's luma first matched to the mean and
standard deviation of the content's, and the result's luma is recombined with the content's Cb and Cr.

Everything runs in fp32 (autocast off) on the network's device; a seed gives the same result (on CUDA with cuDNN's
deterministic algorithms, which are switched on for the run).

Example:
    >>> import torch
    >>> from vislab.tasks.shared.features import load_feature_net
    >>> net = load_feature_net("random")
    >>> g = torch.Generator().manual_seed(0)
    >>> content, style = torch.rand(1, 3, 32, 32, generator=g) * 2 - 1, torch.rand(1, 3, 32, 32, generator=g) * 2 - 1
    >>> r = transfer(content, style, net, steps=5, progress="off")
    >>> r.image.shape, len(r.history), r.style_loss_end < r.style_loss_start
    (torch.Size([1, 3, 32, 32]), 5, True)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from vislab.core.errors import ConfigError, DataError, ShapeError
from vislab.tasks.shared.features import (
    FeatureNet,
    content_loss,
    gram,
    layer_weights,
    min_size,
    relative_error,
    resize_to,
    style_loss,
    tv_loss,
)

CONTENT_WEIGHT, STYLE_WEIGHT, TV_WEIGHT = 1.0, 5.0, 0.5
LRS = {"lbfgs": 1.0, "adam": 0.05}
LBFGS_CHUNK, LBFGS_HISTORY = 10, 50  # L-BFGS iterations between two clamps; its curvature memory
RANGE_WEIGHT = 100.0  # the penalty on pixels outside [-1, 1] while L-BFGS runs between clamps
INITS = ("content", "noise", "style")
GRAY_TOLERANCE = 2.0 / 255 * 2  # two 8-bit levels on the [-1, 1] scale: channels this close are gray

Callback = Callable[[int, torch.Tensor, dict[str, float]], Any]


@dataclass
class TransferResult:
    """What :func:`transfer` / :func:`texture` made.

    Attributes:
        image: ``(1, 3, H, W)`` in [-1, 1] on the CPU (gray when content and style are, or a gray content with
            ``preserve_color``).
        history: one dict per gradient evaluation: ``step`` (1-based), ``style``, ``content``, ``tv`` (the unweighted
            losses of the image evaluated) and ``total`` (their weighted sum, without the range penalty).
        style_loss_start, style_loss_end: the style loss of the start and of the final (clamped) image (normalised:
            1 = the content image's for a transfer, the start noise's for a texture; so ``1 / style_loss_end`` is
            the reduction factor).
        content_loss_end: the content loss of the final image (normalised: 1 = the style image's; 0 for a texture).
        seconds: wall time of the optimisation.
        note: lines for the user (the network's note, a resized style image), joined by ``"; "``; ``""`` if none.
    """

    image: torch.Tensor
    history: list[dict[str, float]] = field(default_factory=list)
    style_loss_start: float = float("nan")
    style_loss_end: float = float("nan")
    content_loss_end: float = 0.0
    seconds: float = 0.0
    note: str = ""


# --------------------------------------------------------------------------------------------
# checks and colour
# --------------------------------------------------------------------------------------------
def is_gray(x: torch.Tensor) -> bool:
    """Whether ``(B, C, H, W)`` is grayscale: one channel, or all channels equal within two 8-bit levels."""
    return x.shape[1] == 1 or bool((x.amax(1) - x.amin(1)).abs().max() <= GRAY_TOLERANCE)


def _check_image(x: torch.Tensor, what: str) -> torch.Tensor:
    if not torch.is_tensor(x) or x.ndim != 4 or x.shape[0] != 1 or x.shape[1] not in (1, 3):
        raise ShapeError(what, "a (1, 1 or 3, H, W) tensor in [-1, 1]", tuple(x.shape) if torch.is_tensor(x) else type(x).__name__)
    return x.detach().float().contiguous()  # L-BFGS views the gradient flat


def _check_size(net: FeatureNet, layers: Sequence[str], hw: tuple[int, int], what: str) -> None:
    n = min_size(net, layers)
    if min(hw) < n:
        deepest = net.deepest(layers)
        raise DataError(f"{what}: expected at least {n} x {n} pixels for layer {deepest} (1/{net.strides[deepest]} of the image), "
                        f"got {hw[0]} x {hw[1]}")


def _layers(net: FeatureNet, layers: Sequence[str] | str | None, default: list[str], what: str) -> list[str]:
    if layers is None:
        return list(default)
    if isinstance(layers, str):
        layers = [s.strip() for s in layers.split(",") if s.strip()]
    out = net.check_layers(layers, what)
    if not out:
        raise ConfigError(f"{what}: expected at least one layer of {net.name} ({', '.join(net.layers)}), got none")
    return list(dict.fromkeys(out))


def rgb_to_ycbcr(x: torch.Tensor) -> torch.Tensor:
    """``(B, 3, H, W)`` RGB in [-1, 1] -> Y (in [-1, 1]), Cb, Cr (zero-centred): JPEG's (ITU-R 601) full-range matrix."""
    r, g, b = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    y = 0.299 * r + 0.587 * g + 0.114 * b
    return torch.cat([y, (b - y) * 0.564, (r - y) * 0.713], 1)


def ycbcr_to_rgb(x: torch.Tensor) -> torch.Tensor:
    """The inverse of :func:`rgb_to_ycbcr`."""
    y, cb, cr = x[:, 0:1], x[:, 1:2], x[:, 2:3]
    return torch.cat([y + 1.403 * cr, y - 0.714 * cr - 0.344 * cb, y + 1.773 * cb], 1)


def luma(x: torch.Tensor) -> torch.Tensor:
    """The Y channel ``(B, 1, H, W)`` of RGB (or the image itself when it has one channel)."""
    return x if x.shape[1] == 1 else rgb_to_ycbcr(x)[:, :1]


def match_luma(y: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """``y`` shifted and scaled to the mean and standard deviation of ``ref`` (Gatys et al.'s luminance matching)."""
    return ((y - y.mean()) / y.std().clamp_min(1e-6) * ref.std() + ref.mean()).clamp(-1, 1)


# --------------------------------------------------------------------------------------------
# the optimisation
# --------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _exact(device: torch.device) -> Iterator[None]:
    """fp32, gradients on, autocast off, cuDNN deterministic (restored afterwards)."""
    cudnn = torch.backends.cudnn
    was = cudnn.deterministic, cudnn.benchmark
    if device.type == "cuda":
        cudnn.deterministic, cudnn.benchmark = True, False
    try:
        with torch.enable_grad(), torch.autocast(device.type, enabled=False) if device.type in ("cuda", "cpu") else contextlib.nullcontext():
            yield
    finally:
        cudnn.deterministic, cudnn.benchmark = was


def _rgb(x: torch.Tensor) -> torch.Tensor:
    """A gray ``(B, 1, H, W)`` image as ``(B, 3, H, W)`` (others unchanged)."""
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def _noise(shape: tuple[int, ...], seed: int, device: torch.device) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=g) * 0.5).clamp(-1, 1).to(device)


class _Objective:
    """The weighted loss of an image against fixed content features and style Grams."""

    def __init__(self, net: FeatureNet, content_t: dict[str, torch.Tensor], style_t: dict[str, torch.Tensor],
                 weights: tuple[float, float, float], style_layer_weights=None, content_layer_weights=None):
        self.net, self.content_t, self.style_t = net, content_t, style_t
        self.cw, self.sw, self.tw = weights
        self.slw, self.clw = style_layer_weights, content_layer_weights
        self.layers = list(dict.fromkeys(list(content_t) + list(style_t)))

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        feats = self.net(x, self.layers)
        s = style_loss(feats, self.style_t, self.slw) if self.style_t else x.new_zeros(())
        c = content_loss(feats, self.content_t, self.clw) if self.content_t else x.new_zeros(())
        tv = tv_loss(x)
        total = self.sw * s + self.cw * c + self.tw * tv
        return total, {"style": float(s.detach()), "content": float(c.detach()), "tv": float(tv.detach()), "total": float(total.detach())}


def _range_penalty(x: torch.Tensor) -> torch.Tensor:
    """``mean(relu(|x| - 1)^2)``: how far pixels lie outside [-1, 1] (0 inside)."""
    return (x.abs() - 1).clamp_min(0).pow(2).mean()


def _optimise(objective: _Objective, x0: torch.Tensor, steps: int, optimizer: str, lr: float | None,
              callback: Callback | None, progress: str | None, label: str,
              finish: Callable[[torch.Tensor], torch.Tensor] = lambda x: x) -> tuple[torch.Tensor, list[dict[str, float]], float]:
    """Optimise the pixels of ``x0`` for ``steps`` gradient evaluations; clamp to [-1, 1] after every step.

    Adam: one evaluation and one update per step. L-BFGS: ``torch.optim.LBFGS`` with a strong-Wolfe line search, run
    in chunks of ``LBFGS_CHUNK`` iterations (its curvature memory kept across chunks) with the pixels clamped after
    each chunk; a step is one function evaluation (line-search trials included), so ``steps`` bounds the work
    exactly. While L-BFGS runs between two clamps, ``RANGE_WEIGHT * mean(relu(|x| - 1)^2)`` keeps the pixels near
    the box (measured: without it the clamp undoes much of the progress; with Adam it is always 0).
    """
    from vislab.core.progress import Tracker

    if optimizer not in LRS:
        raise ConfigError(f"--optimizer: expected one of {', '.join(LRS)}, got '{optimizer}'")
    if int(steps) < 0:
        raise ConfigError(f"--steps: expected a number >= 0, got {steps}")
    steps = int(steps)
    lr = LRS[optimizer] if lr is None else float(lr)
    if not lr > 0 or not math.isfinite(lr):
        raise ConfigError(f"--lr: expected a positive number, got {lr}")
    x = x0.detach().clone().requires_grad_(True)
    if optimizer == "lbfgs":
        opt: torch.optim.Optimizer = torch.optim.LBFGS([x], lr=lr, max_iter=LBFGS_CHUNK, history_size=LBFGS_HISTORY,
                                                       tolerance_grad=0.0, tolerance_change=0.0, line_search_fn="strong_wolfe")
    else:
        opt = torch.optim.Adam([x], lr=lr)
    history: list[dict[str, float]] = []
    stop = False
    t0 = time.perf_counter()
    with Tracker(label, total=steps, unit="steps", mode=progress) as bar:

        def closure() -> torch.Tensor:
            nonlocal stop
            opt.zero_grad(set_to_none=True)
            loss, terms = objective(x)
            loss = loss + RANGE_WEIGHT * _range_penalty(x)
            if not torch.isfinite(loss):
                from vislab.core.errors import TrainingError

                raise TrainingError(f"style transfer: expected a finite loss, got {float(loss)} at step {len(history) + 1}; "
                                    "lower --lr or the loss weights")
            loss.backward()
            history.append({"step": len(history) + 1, **terms})
            bar.advance()
            if callback is not None and callback(len(history), finish(x.detach().clamp(-1, 1)), dict(history[-1])):
                stop = True
            return loss

        while len(history) < steps and not stop:
            left = steps - len(history)
            if optimizer == "lbfgs":
                opt.param_groups[0]["max_iter"] = min(LBFGS_CHUNK, left)
                opt.param_groups[0]["max_eval"] = left
            before = len(history)
            opt.step(closure)
            with torch.no_grad():
                x.clamp_(-1, 1)
            if len(history) == before:  # L-BFGS found nothing to do (a zero gradient): done
                break
    return x.detach(), history, time.perf_counter() - t0


def _targets(net: FeatureNet, content: torch.Tensor | None, style: torch.Tensor, content_layers: list[str], style_layers: list[str]):
    with torch.no_grad():
        ct = {k: v.detach() for k, v in net(content, content_layers).items()} if content is not None and content_layers else {}
        st = {k: gram(v).detach() for k, v in net(style, style_layers).items()}
    return ct, st


@torch.no_grad()
def _pair_scale(net: FeatureNet, reference: torch.Tensor, targets: dict[str, torch.Tensor], base, grams: bool) -> dict[str, float]:
    """Per-layer weights ``base_l / e_l``, ``e_l`` the relative error of ``reference`` at layer ``l``: the loss of
    ``reference`` is then exactly 1 (each layer contributing its base weight)."""
    feats = net(reference, list(targets))
    w = layer_weights(list(targets), base)
    out = {}
    for n, t in targets.items():
        e = float(relative_error(gram(feats[n]) if grams else feats[n], t))
        out[n] = w[n] / max(e, 1e-6)
    return out


def _final(objective: _Objective, x: torch.Tensor) -> dict[str, float]:
    with torch.no_grad():
        return objective(x)[1]


def transfer(content: torch.Tensor, style: torch.Tensor, net: FeatureNet, *, content_layers: Sequence[str] | str | None = None,
             style_layers: Sequence[str] | str | None = None, content_weight: float = CONTENT_WEIGHT, style_weight: float = STYLE_WEIGHT,
             tv_weight: float = TV_WEIGHT, steps: int = 300, optimizer: str = "lbfgs", lr: float | None = None, init: str = "content",
             preserve_color: bool = False, style_scale: float = 1.0, seed: int = 0, style_name: str = "style image",
             content_name: str = "content image", style_layer_weights: Sequence[float] | dict[str, float] | None = None,
             normalize: bool = True, callback: Callback | None = None, progress: str | None = None) -> TransferResult:
    """Restyle ``content`` (``(1, C, H, W)`` in [-1, 1]) with the style of ``style`` in the feature space of ``net``.

    Args:
        content_layers, style_layers: layer names (a list or a comma-separated string); default the net's (Gatys et
            al.'s ``relu4_2`` and ``relu1_1 ... relu5_1`` for VGG and the random network).
        content_weight, style_weight, tv_weight: the loss weights (see the module doc; 1, 5, 0.5).
        steps: gradient evaluations (for L-BFGS too; its last line search may take a few more).
        optimizer: ``lbfgs`` (default, lr 1) or ``adam`` (lr 0.05 on the [-1, 1] scale); ``lr`` (None: those) overrides.
        init: the start image: ``content`` (default: converges fastest, keeps the most content), ``noise`` (seeded
            Gaussian noise, as in the paper; needs more steps) or ``style`` (the style image resized to the content's).
        preserve_color: luminance-only transfer (the content's colours are kept; see the module doc).
        style_scale: the style image's side relative to the area-matched size (2: strokes twice as large).
        seed: the noise of ``init="noise"``; the result is the same for a seed.
        style_name, content_name: how messages name the images (file names, for the CLI).
        style_layer_weights: one weight per style layer (or by name); default equal, summing to 1.
        normalize: scale each layer's loss by its value for the other image (see the module doc); False: the plain
            relative losses.
        callback: ``callback(step, image, losses)`` after every gradient evaluation (``image`` the current
            ``(1, 3, H, W)`` in [-1, 1], with the content's colour when ``preserve_color``); returning True stops
            (Adam at once, L-BFGS at the end of its current chunk of 10 iterations).
        progress: ``auto`` / ``on`` / ``off`` for the progress bar (None: the running command's ``--progress``).

    Raises:
        ConfigError: unknown layers, optimizer or init; ``preserve_color`` with a grayscale style image.
        DataError: an image smaller than the deepest layer needs.
    """
    content, style = _check_image(content, content_name), _check_image(style, style_name)
    if init not in INITS:
        raise ConfigError(f"--init: expected one of {', '.join(INITS)}, got '{init}'")
    if not style_scale > 0:
        raise ConfigError(f"--style-scale: expected a positive number, got {style_scale}")
    c_layers = _layers(net, content_layers, net.default_content, "--content-layers")
    s_layers = _layers(net, style_layers, net.default_style, "--style-layers")
    dev = net.device
    notes = [net.note] if getattr(net, "note", "") else []
    h, w = content.shape[-2:]
    _check_size(net, c_layers + s_layers, (h, w), content_name)
    if preserve_color and is_gray(style):
        raise ConfigError(f"--preserve-color: expected a colour style image, got a grayscale one ('{style_name}'): luminance-only "
                          "transfer keeps the content's colours apart from the style's, and this style has none to keep apart; "
                          "drop --preserve-color or pass a colour style image")
    # the style at the content's area, its own aspect
    sh, sw = style.shape[-2:]
    k = math.sqrt(h * w / (sh * sw)) * style_scale
    size = (max(1, round(sh * k)), max(1, round(sw * k)))
    if size != (sh, sw):
        notes.append(f"{style_name} resized from {sh} x {sw} to {size[0]} x {size[1]} (the content's area)")
    style_r = resize_to(style, size).clamp(-1, 1)
    style_c = resize_to(style, (h, w)).clamp(-1, 1).to(dev)  # the style at the content's shape: init "style", the content loss's 1
    _check_size(net, s_layers, size, f"{style_name} (resized to the content's area)")
    content, style_r = content.to(dev), style_r.to(dev)

    colour = None
    if preserve_color:
        ycc = rgb_to_ycbcr(content) if content.shape[1] == 3 else None
        colour = ycc[:, 1:] if ycc is not None else None
        content_x, style_x = luma(content), match_luma(luma(style_r), luma(content))
        style_c = match_luma(luma(style_c), luma(content))
    else:
        content_x, style_x = content, style_r
        if content_x.shape[1] != style_x.shape[1]:  # gray content, colour style (or the reverse): optimise in colour
            content_x, style_x, style_c = (t.expand(-1, 3, -1, -1) for t in (content_x, style_x, style_c))

    def finish(y: torch.Tensor) -> torch.Tensor:
        if colour is None:
            return _rgb(y)
        return ycbcr_to_rgb(torch.cat([y, colour], 1)).clamp(-1, 1)

    with _exact(dev):
        ct, st = _targets(net, content_x, style_x, c_layers, s_layers)
        slw, clw = style_layer_weights, None
        if normalize:  # 1 = the style loss of the content image, the content loss of the style image
            slw = _pair_scale(net, content_x, st, style_layer_weights, grams=True)
            clw = _pair_scale(net, style_c, ct, None, grams=False)
        objective = _Objective(net, ct, st, (float(content_weight), float(style_weight), float(tv_weight)), slw, clw)
        if init == "content":
            x0 = content_x
        elif init == "style":
            x0 = style_c
        else:
            x0 = _noise(tuple(content_x.shape), seed, dev)
        start = _final(objective, x0)
        x, history, seconds = _optimise(objective, x0, steps, optimizer, lr, callback, progress, "style transfer", finish)
        end = _final(objective, x)
    return TransferResult(finish(x).cpu(), history, start["style"], end["style"], end["content"], seconds, "; ".join(notes))


def texture(style: torch.Tensor, net: FeatureNet, *, size: tuple[int, int] | None = None, style_layers: Sequence[str] | str | None = None,
            style_weight: float = 1.0, tv_weight: float = TV_WEIGHT / STYLE_WEIGHT, steps: int = 300, optimizer: str = "lbfgs",
            lr: float | None = None, seed: int = 0, style_name: str = "style image",
            style_layer_weights: Sequence[float] | dict[str, float] | None = None, normalize: bool = True,
            callback: Callback | None = None, progress: str | None = None) -> TransferResult:
    """Texture synthesis (Gatys, Ecker & Bethge 2015): seeded noise of ``size`` (default the style's) optimised to match
    the style image's Gram matrices (no content loss). The style is used at its own scale; ``size`` may be larger.
    The other arguments are :func:`transfer`'s (``tv_weight`` default 0.1: the same ratio to ``style_weight=1`` as
    transfer's 0.5 to 5; the style loss is normalised to 1 for the start noise).

    Raises:
        ConfigError: unknown layers or optimizer.
        DataError: a style image or ``size`` smaller than the deepest layer needs.
    """
    style = _check_image(style, style_name)
    s_layers = _layers(net, style_layers, net.default_style, "--style-layers")
    size = tuple(int(v) for v in (size or style.shape[-2:]))
    if len(size) != 2 or min(size) < 1:
        raise ConfigError(f"--size: expected H W > 0, got {size}")
    _check_size(net, s_layers, tuple(style.shape[-2:]), style_name)
    _check_size(net, s_layers, size, "--size")
    dev = net.device
    style = style.to(dev)
    with _exact(dev):
        _, st = _targets(net, None, style, [], s_layers)
        x0 = _noise((1, style.shape[1], *size), seed, dev)
        slw = _pair_scale(net, x0, st, style_layer_weights, grams=True) if normalize else style_layer_weights  # 1 = the noise's
        objective = _Objective(net, {}, st, (0.0, float(style_weight), float(tv_weight)), slw)
        start = _final(objective, x0)
        x, history, seconds = _optimise(objective, x0, steps, optimizer, lr, callback, progress, "texture", _rgb)
        end = _final(objective, x)
    return TransferResult(_rgb(x).cpu(), history, start["style"], end["style"], 0.0, seconds, getattr(net, "note", "") or "")
