"""Zero-shot, multimodal search: a CLIP model (open_clip) from *local* weights embeds images and texts into one space.

``vislab embed index clip:ViT-B-32 ./photos --weights open_clip_model.safetensors`` indexes photos with CLIP's image
tower; ``vislab embed search INDEX "a dog on a beach" --text`` finds them from a sentence with its text tower --
no training, and nothing downloaded (the weights are a file you give; open_clip's BPE vocabulary ships inside its
package). Weights load only through safe loaders (safetensors, or ``torch.load(weights_only=True)``).

Images are prepared as CLIP's own transform does: resized so the shorter side is the model's size (bicubic), centre
crop, CLIP's mean / std.

Example:
    >>> parse_clip("clip:ViT-B-32"), parse_clip("runs/embed/exp")
    ('ViT-B-32', None)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import CheckpointError, ConfigError, did_you_mean
from vislab.core.io import file_sha256

PREFIX = "clip:"


def parse_clip(checkpoint: str) -> str | None:
    """The open_clip architecture of a ``clip:ARCH`` checkpoint argument, else None."""
    return checkpoint[len(PREFIX):] if checkpoint.startswith(PREFIX) else None


class ClipEmbedder(nn.Module):
    """A CLIP model as an embedder: :meth:`embed` (images), :meth:`embed_text` (texts), both L2-normalised."""

    distance = "cosine"

    def __init__(self, model: nn.Module, tokenizer: Any, size: tuple[int, int], mean, std):
        super().__init__()
        self.model, self.tokenizer = model, tokenizer
        self.size, self.mean, self.std = size, torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.model.encode_image(x).float(), dim=1)

    @torch.no_grad()
    def embed_text(self, texts: list[str]) -> torch.Tensor:
        dev = next(self.model.parameters()).device
        return F.normalize(self.model.encode_text(self.tokenizer(texts).to(dev)).float(), dim=1)

    def preprocess(self, arrays: list[np.ndarray]) -> torch.Tensor:
        """``(H, W, C)`` uint8 images -> CLIP's input batch: shorter side to the model's size, centre crop, normalise."""
        out = []
        h, w = self.size
        for a in arrays:
            x = torch.from_numpy(np.array(a, dtype=np.uint8, copy=True)).permute(2, 0, 1)[None].float() / 255
            x = x.expand(-1, 3, -1, -1) if x.shape[1] == 1 else x
            s = max(h / x.shape[2], w / x.shape[3])
            x = F.interpolate(x, size=(max(h, round(x.shape[2] * s)), max(w, round(x.shape[3] * s))), mode="bicubic", align_corners=False, antialias=True)
            top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
            out.append(x[:, :, top : top + h, left : left + w].clamp(0, 1))
        return (torch.cat(out) - self.mean) / self.std


def read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """A weights file through a safe loader: safetensors, or a torch file with ``weights_only=True``."""
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        return load_file(str(path))
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - a pickle that needs code, or not a torch file at all
        first = str(e).strip().splitlines()[0][:120] if str(e).strip() else type(e).__name__
        raise CheckpointError(f"--weights '{path}': expected safetensors or a weights-only torch file, got one that cannot be read safely ({first})") from None
    sd = sd.get("state_dict", sd) if isinstance(sd, dict) else sd
    if not isinstance(sd, dict):
        raise CheckpointError(f"--weights '{path}': expected a state dict, got {type(sd).__name__}")
    return {k.removeprefix("module."): v for k, v in sd.items()}


def load_clip(arch: str, weights: str, device: torch.device) -> tuple[ClipEmbedder, dict[str, Any], str]:
    """``(embedder, state, model_id)`` of open_clip model ``arch`` with the weights file ``weights``.

    Raises:
        ConfigError: open_clip missing, an unknown architecture, no ``--weights``.
        CheckpointError: weights that cannot be read safely or do not fit ``arch``.
    """
    try:
        import open_clip
    except ImportError:
        raise ConfigError(f"clip:{arch}: expected open_clip to be installed (pip install open-clip-torch, or vislab[clip]), got no such module") from None
    if arch not in open_clip.list_models():
        raise ConfigError(f"clip:{arch}: expected an open_clip architecture (open_clip.list_models()), got '{arch}'{did_you_mean(arch, open_clip.list_models())}")
    if not weights:
        raise ConfigError(f"--weights: expected the local weights file of clip:{arch} (open_clip's .safetensors or .bin of that model; "
                          f"vislab downloads nothing), got none")
    path = Path(weights).expanduser()
    if not path.is_file():
        raise ConfigError(f"--weights: expected a weights file, got '{path}' (not found)")
    import logging

    quiet = logging.getLogger()
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # open_clip warns that no pretrained weights were loaded: we load them next
    try:
        model = open_clip.create_model(arch, pretrained=None)
    finally:
        quiet.setLevel(level)
    try:
        model.load_state_dict(read_state_dict(path))
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0][:160]
        raise CheckpointError(f"--weights '{path}': expected weights of clip:{arch}, got ones that do not fit ({first})") from None
    pre = model.visual.preprocess_cfg
    size = tuple(pre["size"]) if isinstance(pre["size"], tuple | list) else (pre["size"], pre["size"])
    emb = ClipEmbedder(model.eval().to(device), open_clip.get_tokenizer(arch), size, pre["mean"], pre["std"])
    with torch.no_grad():
        dim = int(emb.embed_text(["a"]).shape[1])
    state = {"channels": 3, "img_size": list(size), "mean": list(pre["mean"]), "std": list(pre["std"]), "distance": "cosine", "embed_dim": dim,
             "path": str(path), "model": f"clip:{arch}"}
    return emb, state, f"clip:{arch}:{file_sha256(path)[:16]}"
