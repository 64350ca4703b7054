"""Style transfer's configs: the fast network's training run, and ``transfer`` / ``texture`` / ``apply``."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.translate import TranslateDataConfig
from vislab.engine.config import RunConfig, TrainConfig

DEVICES = ("auto", "cpu", "cuda", "mps")
FEATURES_HELP = ("feature network of the losses: vgg19:FILE / vgg16:FILE (torchvision weights), a vislab classify run (e.g. a fine-tuned "
                 "classifier), random (a random multi-scale network), auto (VGG-19 in $TORCH_HOME, else random, and says so)")


@dataclass
class StyleDataConfig(TranslateDataConfig):
    """Content images to learn from, and the style images (``style``'s ``data:``)."""

    data: str = opt("skimage", "content images: a folder of photos, skimage (scikit-image's photos), shapes, digits")
    style: list[str] = opt([], "style image(s), comma-separated: one network learns them all (conditional instance norm)")
    style_size: int = opt(0, "resize each style image so its longer side is this many pixels (0: twice --img-size)")


@dataclass
class StyleModelConfig:
    """The feed-forward network (Johnson et al. 2016) and its losses."""

    width: int = opt(32, "channels of the first layer (Johnson et al.: 32)")
    blocks: int = opt(5, "residual blocks (Johnson et al.: 5)")
    features: str = opt("auto", FEATURES_HELP)
    content_layers: str = opt("", "content layers, comma-separated (default: the network's, relu4_2 for VGG)")
    style_layers: str = opt("", "style layers, comma-separated (default: relu1_1 ... relu5_1)")
    content_weight: float = opt(1.0, "weight of the (relative) content loss")
    style_weight: float = opt(10.0, "weight of the (relative) Gram-matrix style loss")
    tv_weight: float = opt(1e-3, "weight of the total-variation loss")
    sample_every: int = opt(0, "every this many steps, the network's output on fixed validation images (0: 20 over the run; -1: none)")


def _train_defaults() -> TrainConfig:
    return TrainConfig(epochs=4, optimizer="adam", lr=1e-3, momentum=0.9, weight_decay=0.0, scheduler="constant")


@dataclass
class StyleConfig:
    """``vislab style train``: a fast style-transfer network for one or several styles."""

    data: StyleDataConfig = field(default_factory=lambda: StyleDataConfig(batch_size=8, img_size=64, load_size=-1))
    model: StyleModelConfig = field(default_factory=StyleModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class TransferConfig:
    """``vislab style transfer CONTENT STYLE``: Gatys et al.'s optimisation of the image itself."""

    content: str = opt("", "content image", cli=False)
    style: str = opt("", "style image", cli=False)
    features: str = opt("auto", FEATURES_HELP)
    content_layers: str = opt("", "content layers, comma-separated (default: relu4_2)")
    style_layers: str = opt("", "style layers, comma-separated (default: relu1_1,relu2_1,relu3_1,relu4_1,relu5_1)")
    content_weight: float = opt(1.0, "weight of the (relative) content loss")
    style_weight: float = opt(5.0, "weight of the (relative) style loss (larger: more style, less content)")
    tv_weight: float = opt(0.5, "weight of the total-variation loss (smoothness, in units of the [-1, 1] pixel scale)")
    steps: int = opt(300, "optimisation steps (gradient evaluations)")
    optimizer: str = opt("lbfgs", "lbfgs (the paper's) or adam", choices=("lbfgs", "adam"))
    lr: float = opt(0.0, "step size (0: 1 for lbfgs, 0.05 for adam)")
    init: str = opt("content", "start image: content, noise or style", choices=("content", "noise", "style"))
    preserve_color: bool = opt(False, "keep the content's colours: transfer the style's luminance only (Gatys et al. 2016)")
    size: int = opt(384, "resize the content image so its longer side is this many pixels (0: its own size)")
    style_scale: float = opt(1.0, "scale of the style image relative to the content's area (2: larger strokes)")
    frames: int = opt(0, "also write progress.gif with this many frames of the optimisation (0: none)")
    seed: int = opt(0, "seed of the noise start")
    out: str = opt("", "output folder (default: runs/style/transfer-<content>-<style>)")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class TextureConfig:
    """``vislab style texture STYLE``: texture synthesis from noise (Gatys et al. 2015)."""

    style: str = opt("", "texture / style image", cli=False)
    features: str = opt("auto", FEATURES_HELP)
    style_layers: str = opt("", "style layers, comma-separated (default: relu1_1 ... relu5_1)")
    size: int = opt(0, "side of the square texture (0: the style image's size)")
    max_style_size: int = opt(384, "shrink the style image so its longer side is at most this (0: its own size)")
    steps: int = opt(300, "optimisation steps")
    optimizer: str = opt("lbfgs", "lbfgs or adam", choices=("lbfgs", "adam"))
    lr: float = opt(0.0, "step size (0: 1 for lbfgs, 0.05 for adam)")
    frames: int = opt(0, "also write progress.gif with this many frames (0: none)")
    seed: int = opt(0, "seed of the noise")
    out: str = opt("", "output folder (default: runs/style/texture-<style>)")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class ApplyConfig:
    """``vislab style apply RUN INPUTS``: a trained fast network on images, folders and videos (frame by frame)."""

    checkpoint: str = opt("", "checkpoint file or run folder of `vislab style train`", cli=False)
    inputs: list[str] = opt([], "images, folders or video files (.mp4, .avi, .mov, .mkv, .gif)", cli=False)
    style_index: int = opt(-1, "which of the run's styles (-1: every style, one output each)")
    mix: str = opt("", "blend the styles: comma-separated weights, one per style (e.g. 0.5,0.5)")
    size: int = opt(0, "resize inputs so the longer side is this many pixels (0: their own size)")
    max_frames: int = opt(0, "videos: at most this many frames (0: all)")
    out: str = opt("", "output folder (default: <run>/apply)")
    device: str = opt("auto", "device", choices=DEVICES)
