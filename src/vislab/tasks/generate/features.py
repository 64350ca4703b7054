"""Feature extractors for FID / KID / precision-recall: whose features the numbers are measured in.

* ``inception:FILE`` -- torchvision's Inception-v3 (``inception_v3_google-*.pth``, or any state dict of that
  architecture; read with ``weights_only``), its 2048-d pool features at 299 x 299 and its 1000-class softmax (the
  Inception Score). The numbers are close to, not identical with, the TensorFlow-Inception FID of papers.
* a vislab ``classify`` run (folder or checkpoint) trained on the same kind of images -- the *domain* extractor:
  the input of its last linear layer as features, its softmax as class probabilities (which make the mode-collapse
  numbers: confidence, class entropy, classes covered). On digits or faces it is a far better judge than ImageNet
  features, and it needs no download.
* ``auto`` finds Inception weights in ``$TORCH_HOME/hub/checkpoints`` (``~/.cache/torch`` by default).

Every printed number carries the extractor's :attr:`Extractor.name`, e.g. ``fid[classify:runs/classify/exp] 12.3``.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


class Extractor:
    """``extractor(x)`` for images ``x`` in [-1, 1] ``(B, C, H, W)`` -> ``(features (B, D), probabilities (B, K) or None)``."""

    def __init__(self, name: str, net: nn.Module, head: nn.Module, size: tuple[int, int], channels: int, mean, std, device: torch.device,
                 classes: list[str] | None = None):
        self.classes = classes  # the class names of its probabilities (a classify run's), None for ImageNet's
        self.name, self.net, self.size, self.channels, self.device = name, net.eval().to(device), tuple(size), channels, device
        self.mean = torch.tensor(mean, device=device).view(1, -1, 1, 1)
        self.std = torch.tensor(std, device=device).view(1, -1, 1, 1)
        self._feats: list[torch.Tensor] = []
        head.register_forward_hook(lambda mod, inp, out: self._feats.append(inp[0]))  # the input of the last linear layer

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        with torch.autocast(self.device.type, enabled=False):
            return self._features(x)

    def _features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        x = ((x.float().to(self.device) + 1) / 2).clamp(0, 1)
        if x.shape[1] != self.channels:
            x = x.repeat(1, 3, 1, 1) if self.channels == 3 else x.mean(1, keepdim=True)
        if tuple(x.shape[-2:]) != self.size:
            x = F.interpolate(x, size=self.size, mode="bilinear", align_corners=False, antialias=x.shape[-1] > self.size[-1])
        self._feats.clear()
        logits = self.net((x - self.mean) / self.std)
        feats = self._feats[-1].flatten(1).float()
        probs = logits.float().softmax(1) if torch.is_tensor(logits) and logits.ndim == 2 else None
        return feats, probs


def last_linear(model: nn.Module) -> nn.Module:
    """The last ``nn.Linear`` of ``model`` (its classifier head)."""
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise ConfigError(f"--extractor: expected a classifier with a linear head, got {type(model).__name__}")
    return linears[-1]


def inception_weights_on_disk() -> Path | None:
    """torchvision's Inception-v3 weights in the torch hub cache, if someone put them there."""
    home = Path(os.environ.get("TORCH_HOME", Path.home() / ".cache" / "torch"))
    found = sorted((home / "hub" / "checkpoints").glob("inception_v3_google-*.pth"))
    return found[0] if found else None


def inception(path: str | Path, device: torch.device) -> Extractor:
    from torchvision.models import inception_v3

    from vislab.tasks.shared.weights import read_weights

    # transform_input: the Google-ported weights expect torchvision's re-scaling of ImageNet-normalised input (it is on
    # whenever torchvision itself loads them)
    net = inception_v3(weights=None, aux_logits=True, init_weights=False, transform_input=True)
    sd = read_weights(path).tensors
    missing, unexpected = net.load_state_dict(sd, strict=False)
    if [k for k in missing if not k.startswith("AuxLogits")] or unexpected:
        raise ConfigError(f"--extractor inception:{path}: expected torchvision Inception-v3 weights, got a state dict with "
                          f"{len(missing)} missing and {len(unexpected)} unexpected keys")
    return Extractor(f"inception:{Path(path).name}", net, net.fc, (299, 299), 3, IMAGENET_MEAN, IMAGENET_STD, device)


def classifier(run: str, device: torch.device) -> Extractor:
    from vislab.tasks.shared.model import load_for_inference

    model, state, dev, _ = load_for_inference(run, "classify", str(device) if device.type != "cpu" else "cpu", "fp32")
    return Extractor(f"classify:{run}", model, last_linear(model), tuple(state["img_size"]), state["channels"],
                     state["mean"], state["std"], dev, list(state.get("classes") or []))


def load_extractor(spec: str, device: torch.device | str = "cpu") -> Extractor:
    """``inception:FILE``, a classify run / checkpoint, or ``auto`` (Inception weights in the torch hub cache).

    Raises:
        ConfigError: nothing found for ``auto``; a file that is neither; another task's run.
    """
    device = torch.device(device)
    if spec.startswith("inception:"):
        path = Path(spec.split(":", 1)[1]).expanduser()
        if not path.is_file():
            raise ConfigError(f"--extractor {spec}: expected a file of torchvision Inception-v3 weights, got '{path}' (not found)")
        return inception(path, device)
    if spec in ("", "auto"):
        found = inception_weights_on_disk()
        if found is None:
            raise ConfigError("--extractor auto: expected Inception-v3 weights in $TORCH_HOME/hub/checkpoints (inception_v3_google-*.pth), got "
                              "none; pass --extractor RUN (a vislab classify run on the same kind of images) or inception:FILE")
        return inception(found, device)
    if not Path(spec).expanduser().exists():
        raise ConfigError(f"--extractor: expected a vislab classify run folder or checkpoint, or inception:FILE, got '{spec}' (not found)")
    return classifier(spec, device)
