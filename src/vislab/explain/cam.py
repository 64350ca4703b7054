"""Class activation maps and gradient attributions behind one call, for CNNs and ViTs.

CAM methods come from pytorch-grad-cam (Grad-CAM, Grad-CAM++, Score-CAM, Eigen-CAM, Layer-CAM),
gradient attributions from captum (saliency, Integrated Gradients). What is explained is a
:class:`Target`: a callable turning the model's output for *one* image into a scalar. Classification
uses :class:`ClassTarget`; :class:`SegmentationTarget` and :class:`EmbeddingTarget` show how other
tasks plug into the same machinery (a detection target would score its matched box the same way).

The layer a CAM looks at is chosen per model unless given: the model's ``cam_layer`` (ViT: the last
block's first norm, with a token -> map reshape), else the deepest of its ``feature_modules``, else
the last ``Conv2d``.

Example:
    >>> import torch
    >>> from vislab.models import create_model
    >>> model = create_model("small_cnn", num_classes=3, width=8).eval()
    >>> maps, classes = compute_maps(model, torch.randn(2, 3, 16, 16), "gradcam")
    >>> maps.shape, classes.shape, float(maps.min()) >= 0.0, float(maps.max()) <= 1.0
    ((2, 16, 16), torch.Size([2]), True, True)
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError, ModelError, ShapeError, did_you_mean

CAM_METHODS = ("gradcam", "gradcam++", "scorecam", "eigencam", "layercam")
ATTRIBUTION_METHODS = ("saliency", "integrated_gradients")
METHODS = CAM_METHODS + ATTRIBUTION_METHODS
#: the methods whose map does not depend on the target (Eigen-CAM: first principal component)
CLASS_AGNOSTIC = ("eigencam",)
TITLES = {"gradcam": "Grad-CAM", "gradcam++": "Grad-CAM++", "scorecam": "Score-CAM", "eigencam": "Eigen-CAM",
          "layercam": "Layer-CAM", "saliency": "Saliency", "integrated_gradients": "Integrated Gradients"}  # fmt: skip


# ----------------------------------------------------------------------------------------- targets
class Target:
    """What to explain: ``target(output_of_one_image) -> scalar tensor``; ``label`` names it in titles."""

    label: str = "target"

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class ClassTarget(Target):
    """The logit of class ``index`` of a classifier: output (K,) -> output[index]."""

    index: int
    name: str = ""

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.name or f"class {self.index}"

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return output[..., self.index] if output.ndim == 1 else output[self.index]


@dataclass
class SegmentationTarget(Target):
    """Sum of class ``index`` scores inside ``mask``: output (K, H, W), mask (H, W) -> scalar."""

    index: int
    mask: torch.Tensor
    name: str = ""

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.name or f"class {self.index} in mask"

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return (output[self.index] * self.mask.to(output)).sum()


@dataclass
class EmbeddingTarget(Target):
    """Cosine similarity of an embedding to a reference: output (D,), reference (D,) -> scalar."""

    reference: torch.Tensor
    name: str = "similarity to reference"

    @property
    def label(self) -> str:  # type: ignore[override]
        return self.name

    def __call__(self, output: torch.Tensor) -> torch.Tensor:
        return F.cosine_similarity(output.flatten(), self.reference.to(output).flatten(), dim=0)


# ----------------------------------------------------------------------------------------- layers
@dataclass
class LayerChoice:
    """A module to look at, its name, and how to turn its output into (B, C, h, w) (ViT tokens)."""

    name: str
    module: nn.Module
    reshape: Callable[[torch.Tensor], torch.Tensor] | None = None


def _tokens_reshape(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    to_map = getattr(model, "tokens_to_map", None)
    if callable(to_map):
        return to_map
    prefix = int(getattr(getattr(model, "model", model), "num_prefix_tokens", 1))

    def reshape(t: torch.Tensor) -> torch.Tensor:  # (B, prefix + s*s, D) -> (B, D, s, s)
        n = t.shape[1] - prefix
        s = int(round(n**0.5))
        if s * s != n:
            raise ShapeError("token reshape", "a square grid of tokens after the prefix", tuple(t.shape))
        return t[:, prefix:].reshape(t.shape[0], s, s, -1).permute(0, 3, 1, 2)

    return reshape


def resolve_layer(model: nn.Module, name: str | None = None) -> LayerChoice:
    """The layer to explain: ``name`` if given, else the model's ``cam_layer`` / deepest feature module / last conv.

    Raises:
        ModelError: ``name`` is not a submodule (with the closest names).
    """
    modules = dict(model.named_modules())
    if name is None:
        name = getattr(model, "cam_layer", None)
        if name is None and getattr(model, "feature_modules", ()):
            name = model.feature_modules[-1]
        if name is None:
            convs = [n for n, m in modules.items() if isinstance(m, nn.Conv2d)]
            if not convs:
                raise ModelError(f"{type(model).__name__}: expected a Conv2d or a `cam_layer` to explain, got neither; pass a layer name")
            name = convs[-1]
    if name not in modules:
        raise ModelError(f"layer '{name}'{did_you_mean(name, modules)}: expected a submodule name of {type(model).__name__} (see `vislab models show`)")
    module = modules[name]
    vit_like = getattr(model, "num_prefix_tokens", None) is not None or hasattr(getattr(model, "model", None), "num_prefix_tokens")
    return LayerChoice(name, module, _tokens_reshape(model) if vit_like else None)


# ----------------------------------------------------------------------------------------- maps
def _normalise(maps: torch.Tensor) -> np.ndarray:
    """(B, H, W) -> each map scaled to [0, 1] (constant maps become 0)."""
    flat = maps.reshape(maps.shape[0], -1)
    lo, hi = flat.min(1, keepdim=True).values, flat.max(1, keepdim=True).values
    out = (flat - lo) / (hi - lo).clamp_min(1e-12)
    return out.reshape(maps.shape).detach().cpu().numpy().astype(np.float32)


def _cam_class(method: str):
    import pytorch_grad_cam as pgc

    return {"gradcam": pgc.GradCAM, "gradcam++": pgc.GradCAMPlusPlus, "scorecam": pgc.ScoreCAM,
            "eigencam": pgc.EigenCAM, "layercam": pgc.LayerCAM}[method]  # fmt: skip


def check_method(method: str) -> str:
    m = method.lower().replace("-", "").replace("_", "") if method.lower() not in METHODS else method.lower()
    aliases = {"gradcampp": "gradcam++", "gradcamplusplus": "gradcam++", "integratedgradients": "integrated_gradients", "ig": "integrated_gradients"}
    m = aliases.get(m, m)
    if m not in METHODS:
        raise ConfigError(f"explain method '{method}'{did_you_mean(method, METHODS)}: expected one of {', '.join(METHODS)}")
    return m


def predict(model: nn.Module, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, C, H, W) -> (class indices (B,), probabilities (B, K)) in eval mode."""
    with torch.no_grad():
        probs = model(images).softmax(-1)
    return probs.argmax(-1), probs


def compute_maps(
    model: nn.Module,
    images: torch.Tensor,
    method: str = "gradcam",
    targets: Sequence[Target] | None = None,
    layer: str | None = None,
) -> tuple[np.ndarray, torch.Tensor]:
    """Explanation maps, one per image, at the input resolution.

    Args:
        model: a classifier (or any model whose output each ``Target`` understands), put in eval mode.
        images: (B, C, H, W) model inputs (already normalised).
        method: one of :data:`METHODS`.
        targets: one :class:`Target` per image; default: the predicted class of each image.
        layer: module name for CAM methods (default: :func:`resolve_layer`); ignored by attributions.

    Returns:
        maps (B, H, W) float32 in [0, 1], and the class indices explained (B,) (predicted when no targets).
    """
    if images.ndim != 4:
        raise ShapeError("compute_maps", "images (B, C, H, W)", tuple(images.shape))
    method = check_method(method)
    model.eval()
    predicted, _ = predict(model, images)
    if targets is None:
        targets = [ClassTarget(int(c)) for c in predicted]
    if len(targets) != images.shape[0]:
        raise ConfigError(f"compute_maps: expected one target per image ({images.shape[0]}), got {len(targets)}")
    indices = torch.tensor([getattr(t, "index", -1) for t in targets])
    if method in CAM_METHODS:
        choice = resolve_layer(model, layer)
        quiet = contextlib.redirect_stderr(io.StringIO())  # Score-CAM draws a tqdm bar per image
        with _cam_class(method)(model=model, target_layers=[choice.module], reshape_transform=choice.reshape) as cam, quiet:
            if method == "scorecam":
                cam.batch_size = 32
            maps = cam(input_tensor=images, targets=list(targets))  # (B, H, W), each in [0, 1]
        return np.nan_to_num(maps.astype(np.float32)), indices
    return _normalise(_attribution(model, images, method, targets)), indices


def _attribution(model: nn.Module, images: torch.Tensor, method: str, targets: Sequence[Target]) -> torch.Tensor:
    """captum attributions of each image's target; |attribution| summed over channels -> (B, H, W)."""
    from captum.attr import IntegratedGradients, Saliency

    maps = []
    for i in range(images.shape[0]):  # one image at a time: targets differ per image
        x = images[i : i + 1].clone().requires_grad_(True)

        def f(z: torch.Tensor, t: Target = targets[i]) -> torch.Tensor:  # (N, C, H, W) -> (N,) scores
            return torch.stack([t(o) for o in model(z)])

        if method == "saliency":
            a = Saliency(f).attribute(x, abs=True)
        else:
            a = IntegratedGradients(f).attribute(x, baselines=torch.zeros_like(x), n_steps=32, internal_batch_size=32)
        maps.append(a.detach().abs().sum(1)[0])  # (H, W)
    return torch.stack(maps)


def peak(maps: np.ndarray) -> np.ndarray:
    """(B, H, W) -> (B, 2) ``(row, col)`` of each map's maximum."""
    flat = maps.reshape(maps.shape[0], -1).argmax(1)
    return np.stack([flat // maps.shape[2], flat % maps.shape[2]], 1)
