"""Spatio-temporal Grad-CAM: where and *when* a video model looks.

For a 3-D network the CAM layer's activations ``A`` are ``(C, T', H', W')``; the weights are the gradients of the
class score averaged over time and space, ``cam = relu(sum_c w_c A_c)``, upsampled to the clip's ``(T, H, W)``.
For a model built on a 2-D backbone (frame-wise, CNN+RNN, two-stream) the layer sees ``(B*T, C, H', W')`` and the
CAM is computed per frame from the gradients that reach that frame through the temporal model.

Example:
    >>> import torch
    >>> from vislab.models.registry import MODELS
    >>> m = MODELS.build("c3d", num_classes=3, in_chans=3, width=8).eval()
    >>> cam, prob = spatiotemporal_cam(m, torch.randn(1, 3, 8, 32, 32))
    >>> cam.shape, bool(cam.min() >= 0) and bool(cam.max() <= 1)
    ((8, 32, 32), True)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError


def _module(model: nn.Module, name: str) -> nn.Module:
    mods = dict(model.named_modules())
    if name not in mods:
        from vislab.core.errors import did_you_mean

        raise ConfigError(f"--layer: expected a module of {type(model).__name__} (`vislab models show`), got '{name}'{did_you_mean(name, mods)}")
    return mods[name]


def spatiotemporal_cam(model: nn.Module, x: torch.Tensor, target: int | None = None, layer: str = "",
                       flow: torch.Tensor | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Grad-CAM of one clip ``x`` ``(1, C, T, H, W)``: ``(cam (T, H, W) in [0, 1], class probabilities (K,))``."""
    name = layer or getattr(model, "cam_layer", "")
    if not name:
        raise ConfigError(f"explain: expected --layer (the model {type(model).__name__} names no CAM layer), got none")
    mod = _module(model, name)
    store: dict[str, torch.Tensor] = {}

    def hook(_m, _i, out):
        out = out[0] if isinstance(out, tuple) else out
        out.retain_grad()
        store["a"] = out

    h = mod.register_forward_hook(hook)
    try:  # cuDNN's RNNs refuse a backward pass in eval mode: the CAM's gradients go through PyTorch's own kernels
        with torch.enable_grad(), torch.backends.cudnn.flags(enabled=False):
            out = model(x, flow) if getattr(model, "needs_flow", False) else model(x)
            logits = out.mean(2) if out.dim() == 3 else out
            prob = logits.float().softmax(1)[0].detach()
            t = int(prob.argmax()) if target is None else int(target)
            model.zero_grad(set_to_none=True)
            logits[0, t].backward()
    finally:
        h.remove()
    a, g = store["a"].detach().float(), store["a"].grad.float()
    T, H, W = x.shape[2:]
    if a.dim() == 5:  # (1, C, T', H', W')
        w = g.mean(dim=(2, 3, 4), keepdim=True)
        cam = F.relu((w * a).sum(1, keepdim=True))  # (1, 1, T', H', W')
        cam = F.interpolate(cam, size=(T, H, W), mode="trilinear", align_corners=False)[0, 0]
    elif a.dim() == 4:  # (T or fewer frames, C, H', W') from a 2-D backbone
        w = g.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((w * a).sum(1, keepdim=True))  # (n, 1, H', W')
        cam = F.interpolate(cam, size=(H, W), mode="bilinear", align_corners=False)[:, 0]
        if cam.shape[0] != T:  # a single-frame stream (two-stream's RGB): the same map on every frame
            cam = cam.mean(0, keepdim=True).expand(T, -1, -1)
    else:
        raise ConfigError(f"--layer {name}: expected a layer with 4-D or 5-D output, got {a.dim()}-D")
    cam = cam - cam.min()
    cam = cam / cam.max().clamp_min(1e-8)
    return cam.cpu().numpy(), prob.cpu().numpy()


def overlay(frames: np.ndarray, cam: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Frames ``(T, H, W, C)`` uint8 with a jet-coloured CAM ``(T, h, w)`` blended in, beside the plain frames."""
    import cv2

    T, H, W = frames.shape[:3]
    rgb = np.repeat(frames, 3, -1) if frames.shape[-1] == 1 else frames
    out = []
    for f, c in zip(rgb, cam, strict=True):
        c = cv2.resize(c.astype(np.float32), (W, H), interpolation=cv2.INTER_LINEAR)
        heat = cv2.applyColorMap((c * 255).astype(np.uint8), cv2.COLORMAP_JET)[..., ::-1]
        out.append(np.concatenate([f, (f * (1 - alpha) + heat * alpha).astype(np.uint8)], axis=1))
    return np.stack(out)


def explain(cfg: Any) -> dict[str, Any]:
    """CAM GIF + mp4 (frames | overlay) per video, for its first clip (centre clip of longer videos)."""
    from vislab.data.video.flow import video_flow
    from vislab.data.video.flow import clip_flow
    from vislab.data.video.io import read_video, resize_frames, video_info, write_gif, write_video
    from vislab.data.video.sampling import dense, sample
    from vislab.tasks.shared.model import load_for_inference
    from vislab.tasks.video.infer import expand_videos, run_flow_method, unique_stems

    model, state, device, _ = load_for_inference(cfg.checkpoint, "video", cfg.device, "fp32")
    classes = state["classes"]
    target = None
    if cfg.target_class:
        target = int(cfg.target_class) if cfg.target_class.isdigit() else (classes.index(cfg.target_class) if cfg.target_class in classes else None)
        if target is None or not 0 <= target < len(classes):
            raise ConfigError(f"--target-class: expected one of {', '.join(classes)} or an index below {len(classes)}, got '{cfg.target_class}'")
    from vislab.tasks.base import check_all

    check_all([(cfg.fps > 0, "--fps", "> 0", cfg.fps), (cfg.max_videos >= 1, "--max-videos", ">= 1", cfg.max_videos)])
    files = expand_videos(cfg.inputs)[: cfg.max_videos]
    stems = unique_stems(files)
    out = Path(cfg.out) if cfg.out else Path(state["path"]).parent.parent / "explain"
    L, s = state["clip_len"], state["frame_stride"]
    data = state["config"]["data"]
    pad, sampling = data.get("pad", "error"), data.get("sampling", "dense")
    method = run_flow_method(state)
    paths, rows = [], []
    for f, stem in zip(files, stems, strict=True):
        n = video_info(f).frames
        # the clip the run's evaluation takes in the middle of the video (dense), or its spread-out one (uniform / TSN)
        idx = dense(n, L, s, 1, pad=pad, what=f"video {f}")[0] if sampling == "dense" else sample(sampling, n, L, s, 1, None, pad=pad, what=f"video {f}")[0]
        lo, hi = int(idx.min()), int(idx.max())
        span_frames = read_video(f, indices=list(range(lo, hi + 1))) if method else None  # flow needs the frames between
        clip = span_frames[idx - lo] if span_frames is not None else read_video(f, indices=idx.tolist())
        small = resize_frames(clip, state["img_size"], state["channels"] == 1)
        x = torch.from_numpy(small).permute(3, 0, 1, 2)[None].float().div(255)
        x = ((x - torch.tensor(state["mean"]).view(1, -1, 1, 1, 1)) / torch.tensor(state["std"]).view(1, -1, 1, 1, 1)).to(device)
        flow = None
        if method:
            steps = video_flow(resize_frames(span_frames, state["img_size"], state["channels"] == 1), method, data.get("raft_weights", ""))
            fl = clip_flow(steps, idx - lo)  # (L-1, 2, h, w): as training saw it
            flow = (torch.from_numpy(fl).permute(1, 0, 2, 3)[None] / state.get("flow_scale", 4.0)).to(device)
        cam, prob = spatiotemporal_cam(model, x, target, cfg.layer, flow)
        pics = overlay(resize_frames(clip, (max(96, clip.shape[1]), max(96, clip.shape[2]))) if clip.shape[1] < 96 else clip, cam)
        t = int(prob.argmax()) if target is None else target
        gif = write_gif(out / f"{stem}_cam.gif", pics, fps=cfg.fps)
        mp4 = write_video(out / f"{stem}_cam.mp4", pics, fps=cfg.fps)
        paths += [str(gif), str(mp4)]
        rows.append({"path": str(f), "class": classes[t], "prob": float(prob[t]), "gif": str(gif), "mp4": str(mp4),
                     "peak_frame": int(idx[int(cam.reshape(len(cam), -1).mean(1).argmax())])})  # a frame of the video
    return {"out": str(out), "paths": paths, "rows": rows}
