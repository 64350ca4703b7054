"""The catalogue of named ops that ``vislab image`` (and the web page) apply by name: ``sobel``, ``gamma=0.5``,
``gaussian_blur:ksize=7,sigma=2`` or a YAML ``{name: args}``; each resolves to a function of a ``(B, C, H, W)``
tensor in [0, 1] (grey and colour inputs converted where an op needs one or the other).

Example:
    >>> import torch
    >>> (name, fn), = build_chain(["gaussian_blur=5"])
    >>> name, fn(torch.rand(1, 3, 17, 11)).shape
    ('gaussian_blur=5', torch.Size([1, 3, 17, 11]))
    >>> parse_op("gaussian_blur:ksize=7,sigma=2")
    ('gaussian_blur', [], {'ksize': 7, 'sigma': 2})
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from vislab.core.errors import ConfigError, VislabError, did_you_mean


def as_rgb(x: Any) -> Any:
    from vislab.ops.color import gray_to_rgb

    return x if x.shape[1] == 3 else gray_to_rgb(x)


def as_gray(x: Any) -> Any:
    from vislab.ops.color import rgb_to_gray

    return rgb_to_gray(x) if x.shape[1] == 3 else x


def op_table() -> dict[str, tuple[Callable, str]]:
    """Op name -> (function of a ``(B, C, H, W)`` [0, 1] tensor and its arguments, one line of help)."""
    from vislab import ops

    def sp(x: Any, n_segments: int = 200, compactness: float = 10.0) -> Any:
        return ops.superpixel_mean(x, ops.slic(x, n_segments, compactness))

    def boundaries(x: Any, n_segments: int = 200, compactness: float = 10.0) -> Any:
        return ops.mark_boundaries(as_rgb(x), ops.slic(x, n_segments, compactness))

    def space(fwd: Callable) -> Callable:
        def f(x: Any) -> Any:
            y = fwd(as_rgb(x))
            if fwd is ops.rgb_to_lab:
                y = (y + torch.tensor([0.0, 128.0, 128.0]).view(1, 3, 1, 1).to(y)) / torch.tensor([100.0, 255.0, 255.0]).view(1, 3, 1, 1).to(y)
            return y
        return f

    t: dict[str, tuple[Callable, str]] = {
        "gaussian_blur": (ops.gaussian_blur, "gaussian_blur=KSIZE[,SIGMA]  Gaussian smoothing"),
        "box_blur": (ops.box_blur, "box_blur=KSIZE  mean filter"),
        "median_blur": (ops.median_blur, "median_blur=KSIZE  median filter (salt and pepper)"),
        "bilateral": (ops.bilateral_filter, "bilateral=D,SIGMA_COLOR,SIGMA_SPACE  edge-preserving smoothing"),
        "kernel": (lambda x, name="sharpen", size=None: ops.apply_kernel(x, name, size), "kernel=NAME[,SIZE]  a catalogue kernel"),
        "filter2d": (ops.filter2d, "filter2d=[[..],[..]]  any kernel (YAML list)"),
        "sobel": (lambda x, ksize=3: ops.sobel_magnitude(as_gray(x), ksize), "sobel[=KSIZE]  gradient magnitude"),
        "sobel_x": (lambda x, ksize=3: ops.sobel(as_gray(x), 1, 0, ksize), "d/dx"),
        "sobel_y": (lambda x, ksize=3: ops.sobel(as_gray(x), 0, 1, ksize), "d/dy"),
        "direction": (lambda x: (ops.sobel_direction(as_gray(x)) + np.pi) / (2 * np.pi), "gradient direction"),
        "laplacian": (lambda x, ksize=1: ops.laplacian(as_gray(x), ksize), "laplacian[=KSIZE]"),
        "canny": (ops.canny, "canny[=LOW,HIGH]  Canny edges"),
        "gray": (as_gray, "to grayscale"),
        "hsv": (space(ops.rgb_to_hsv), "HSV channels shown as RGB"),
        "hls": (space(ops.rgb_to_hls), "HLS channels shown as RGB"),
        "lab": (space(ops.rgb_to_lab), "Lab channels (scaled) shown as RGB"),
        "ycbcr": (space(ops.rgb_to_ycbcr), "YCbCr channels shown as RGB"),
        "color_mask": (lambda x, name="red": ops.color_mask(as_rgb(x), name), "color_mask=NAME  red, green, blue, ..."),
        "hsv_range": (lambda x, h0=0, h1=360, s0=0.0, s1=1.0, v0=0.0, v1=1.0:
                      ops.hsv_range_mask(as_rgb(x), (h0, h1), (s0, s1), (v0, v1)), "hsv_range=H0,H1,S0,S1,V0,V1"),
        "negative": (ops.negative, "1 - x"),
        "gamma": (ops.gamma, "gamma=G  power law"),
        "brightness_contrast": (ops.brightness_contrast, "brightness_contrast=B,C"),
        "log": (ops.log_transform, "log transform"),
        "threshold": (ops.threshold, "threshold=T|otsu"),
        "adaptive_threshold": (lambda x, block_size=11, c=0.02: ops.adaptive_threshold(as_gray(x), block_size, c),
                               "adaptive_threshold=BLOCK,C"),
        "equalize_hist": (ops.equalize_hist, "histogram equalisation per channel"),
        "clahe": (ops.clahe, "clahe=CLIP[,GRID]"),
        "posterize": (ops.posterize, "posterize=BITS"),
        "quantize": (ops.quantize, "quantize=LEVELS"),
        "saturation": (ops.adjust_saturation, "saturation=FACTOR"),
        "hue": (ops.adjust_hue, "hue=SHIFT (turns)"),
        "resize": (ops.resize, "resize=[H,W] or resize=SHORT_SIDE"),
        "scale": (ops.scale, "scale=FACTOR"),
        "rotate": (ops.rotate, "rotate=DEGREES"),
        "flip": (ops.flip, "flip=horizontal|vertical|both"),
        "center_crop": (ops.center_crop, "center_crop=SIZE"),
        "pad": (ops.pad, "pad=PIXELS"),
        "erode": (ops.erode, "erode=SIZE"),
        "dilate": (ops.dilate, "dilate=SIZE"),
        "open": (ops.opening, "open=SIZE"),
        "close": (ops.closing, "close=SIZE"),
        "gradient": (ops.morph_gradient, "gradient=SIZE  morphological gradient"),
        "tophat": (ops.tophat, "tophat=SIZE"),
        "blackhat": (ops.blackhat, "blackhat=SIZE"),
        "superpixels": (sp, "superpixels=N  SLIC, mean colour per segment"),
        "boundaries": (boundaries, "boundaries=N  SLIC boundaries"),
    }
    return t


def _value(s: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(s)
    except yaml.YAMLError:
        return s


_LIST_ARG = ("resize", "filter2d", "center_crop", "pad", "scale")  # their first argument may be a list


def parse_op(spec: Any) -> tuple[str, list[Any], dict[str, Any]]:
    """``name``, ``name=a,b``, ``name:k=v,k2=v2`` (or a YAML mapping) -> (name, args, kwargs)."""
    if isinstance(spec, dict):
        if len(spec) != 1:
            raise ConfigError(f"pipeline step: expected one op name per entry, got {list(spec)}")
        (name, val), = spec.items()
        if isinstance(val, dict):
            return str(name), [], dict(val)
        if val is None:
            return str(name), [], {}
        return str(name), list(val) if isinstance(val, list) and name not in _LIST_ARG else [val], {}
    spec = str(spec).strip()
    if ":" in spec and ("=" not in spec or spec.index(":") < spec.index("=")):
        name, rest = spec.split(":", 1)
        kwargs = {}
        for part in filter(None, rest.split(",")):
            if "=" not in part:
                raise ConfigError(f"op '{spec}': expected key=value after ':', got '{part}'")
            k, v = part.split("=", 1)
            kwargs[k.strip()] = _value(v)
        return name.strip(), [], kwargs
    if "=" in spec:
        name, rest = spec.split("=", 1)
        v = _value(rest)
        if isinstance(v, str) and "," in v:
            args = [_value(p) for p in v.split(",")]
        else:
            args = list(v) if isinstance(v, list) and name.strip() not in _LIST_ARG else [v]
        return name.strip(), args, {}
    return spec, [], {}


def build_chain(specs: list[Any]) -> list[tuple[str, Callable[[Any], Any]]]:
    """Resolve op specs into callables; an unknown name raises ConfigError with a suggestion."""
    table = op_table()
    chain = []
    for spec in specs:
        name, args, kwargs = parse_op(spec)
        if name not in table:
            raise ConfigError(f"op: expected one of `vislab image ops`, got {name!r}{did_you_mean(name, table)}")
        fn, usage = table[name][0], table[name][1].split("  ")[0]
        given = ", ".join([*map(repr, args), *(f"{k}={v!r}" for k, v in kwargs.items())])

        def call(x: Any, fn: Callable = fn, spec: Any = spec, args: list = args, kwargs: dict = kwargs, usage: str = usage,
                 given: str = given) -> Any:
            try:
                return fn(x, *args, **kwargs)
            except (TypeError, ValueError) as e:  # e.g. gamma=abc: a word where a number belongs
                if isinstance(e, VislabError):  # the op's own clear error
                    raise
                raise ConfigError(f"op '{spec}': expected {usage} (see `vislab image ops`), got {given or 'no arguments'}") from None

        chain.append((name if not args and not kwargs else str(spec), call))
    return chain
