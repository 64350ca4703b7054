"""Image-to-image translation's configs: training (data, model, train, run), the model presets, each command's config."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.translate import TranslateDataConfig
from vislab.engine.config import RunConfig, TrainConfig
from vislab.tasks.shared.export import ExportConfig

DEVICES = ("auto", "cpu", "cuda", "mps")
GAN_LOSSES = ("gan", "lsgan", "hinge")


@dataclass(frozen=True)
class Preset:
    """What ``--model NAME`` means: how pairs come (``pairing``, ``make``), the generator, the critic, the losses."""

    pairing: str  # paired | unpaired | single
    make: str  # none | sr | denoise | colorize
    g: str  # the registered generator
    d: str = ""  # the registered critic ("" : none)
    pixel: str = "l1"  # pixel loss: l1 | mse
    adv: float = 0.0  # weight of the adversarial loss
    gan: str = "gan"
    pixel_weight: float = 1.0
    perceptual: float = 0.0
    summary: str = ""


PRESETS: dict[str, Preset] = {
    "pix2pix": Preset("paired", "none", "pix2pix_unet", "patchgan", "l1", 1.0, "gan", 100.0, summary="pix2pix: U-Net + PatchGAN, L1 + adversarial (Isola et al. 2017)"),
    "paired_l1": Preset("paired", "none", "pix2pix_unet", summary="the pix2pix U-Net with the L1 loss only (the paper's baseline)"),
    "cyclegan": Preset("unpaired", "none", "resnet_gen", "patchgan", "l1", 1.0, "lsgan", summary="CycleGAN: two ResNet generators, two PatchGANs, cycle + identity losses (Zhu et al. 2017)"),
    "colorize": Preset("single", "colorize", "pix2pix_unet", summary="colorization: L -> ab with a U-Net and L1 (the plain baseline)"),
    "colorize_gan": Preset("single", "colorize", "pix2pix_unet", "patchgan", "l1", 1.0, "gan", 100.0, summary="colorization with the pix2pix GAN (DeOldify-like)"),
    "srcnn": Preset("single", "sr", "srcnn", pixel="mse", summary="SRCNN: three convolutions on the bicubic upscale (Dong et al. 2014)"),
    "srresnet": Preset("single", "sr", "srresnet", pixel="mse", summary="SRResNet: residual blocks and pixel shuffle (Ledig et al. 2017)"),
    "edsr": Preset("single", "sr", "edsr", summary="EDSR-baseline: residual blocks without batch norm, L1 (Lim et al. 2017)"),
    "srgan": Preset("single", "sr", "srresnet", "patchgan", "l1", 5e-3, "gan", 1.0, 0.1, summary="SRGAN: SRResNet + perceptual + adversarial losses (Ledig et al. 2017)"),
    "dncnn": Preset("single", "denoise", "dncnn", pixel="mse", summary="DnCNN: residual denoiser (Zhang et al. 2017): gaussian, poisson or JPEG noise"),
}


@dataclass
class TranslateModelConfig:
    """The translation model and how it learns."""

    model: str = opt("pix2pix", "; ".join(f"{k}: {p.summary}" for k, p in PRESETS.items()), choices=tuple(PRESETS))
    width: int = opt(0, "channels of the first layer (0: 64; the generated examples train with 16-32)")
    blocks: int = opt(0, "residual blocks (0: 9 for cyclegan, 16 for srresnet / edsr) or U-Net depth (0: as deep as the crop allows, at most 8); dncnn: layers (0: 17)")
    norm: str = opt("auto", "normalisation in the generator (auto: batch for pix2pix / sr, instance for cyclegan)", choices=("auto", "batch", "instance", "none"))
    d_layers: int = opt(3, "PatchGAN's stride-2 layers (3: the 70 x 70 PatchGAN; 1: 16 x 16, 0: a per-pixel critic)")
    # super-resolution / denoising
    scale: int = opt(2, "super-resolution factor", choices=(2, 3, 4))
    global_skip: bool = opt(True, "srresnet / edsr / srgan: add the bicubic upscale of the input to the output (VDSR, Real-ESRGAN's compact net): "
                                  "trains in minutes; --no-global-skip: the papers' exact models")
    degrade: str = opt("bicubic", "super-resolution inputs: bicubic downscaling, or realesrgan (blur, resize, noise, JPEG)", choices=("bicubic", "realesrgan"))
    noise: str = opt("gaussian", "denoising: gaussian, poisson or jpeg", choices=("gaussian", "poisson", "jpeg"))
    noise_level: float = opt(25.0, "denoising: std on the 0..255 scale (gaussian), peak photons (poisson), JPEG quality (jpeg); 0: a random level per image (blind)")
    # losses
    pixel_loss: str = opt("auto", "pixel loss (auto: the model's)", choices=("auto", "l1", "mse"))
    pixel_weight: float = opt(-1.0, "weight of the pixel loss (-1: the model's: 100 for pix2pix, 1 else)")
    gan_loss: str = opt("auto", "adversarial loss: gan (non-saturating), lsgan (least squares: CycleGAN's), hinge", choices=("auto", *GAN_LOSSES))
    adv_weight: float = opt(-1.0, "weight of the adversarial loss (-1: the model's; 0 trains no critic)")
    cycle_weight: float = opt(10.0, "cyclegan: weight of the cycle-consistency loss (lambda)")
    identity_weight: float = opt(0.5, "cyclegan: weight of the identity loss, relative to --cycle-weight")
    pool_size: int = opt(50, "cyclegan: the history of generated images the critics learn from (0: the latest only)")
    perceptual_weight: float = opt(-1.0, "weight of the perceptual loss in --features space (-1: the model's: 0.1 for srgan, 0 else)")
    features: str = opt("auto", "perceptual loss network: vgg19:FILE, a vislab classify run, random, or auto (VGG-19 in $TORCH_HOME, else random)")
    # pictures during training
    sample_every: int = opt(0, "every this many steps, input / output / target of fixed validation images (0: 20 over the run; -1: none)")


def _train_defaults() -> TrainConfig:
    # Adam(2e-4, beta1 0.5) and the LR constant for the first half, then linearly to 0: pix2pix's and CycleGAN's settings
    return TrainConfig(epochs=10, optimizer="adam", lr=2e-4, momentum=0.5, weight_decay=0.0, scheduler="linear")


@dataclass
class TranslateConfig:
    """``vislab translate train``: everything an image-to-image run is made of."""

    data: TranslateDataConfig = field(default_factory=lambda: TranslateDataConfig(batch_size=16))
    model: TranslateModelConfig = field(default_factory=TranslateModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class TranslateEvalConfig:
    """``vislab translate eval``: PSNR / SSIM (RGB and Y), L1, and each task's own numbers, against a baseline."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    data: str = opt("", "images to evaluate on (default: the run's validation images); same layout as for training")
    eval_size: int = opt(0, "central crop of each image (0: the run's)")
    tile: int = opt(0, "tiled inference with tiles of this many input pixels (0: whole images)")
    n: int = opt(16, "examples in the input / output / target grid")
    out: str = opt("", "output folder (default: <run>/eval)")
    batch_size: int = opt(8, "images per forward pass")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class TranslatePredictConfig:
    """``vislab translate predict``: the model on images or folders, each output written as a PNG."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "images or folders", cli=False)
    direction: str = opt("AtoB", "cyclegan: which generator (AtoB or BtoA)", choices=("AtoB", "BtoA"))
    tile: int = opt(0, "tiled inference: tiles of this many input pixels (0: whole images; large images: 256)")
    overlap: int = opt(32, "tiled inference: overlap of neighbouring tiles (input pixels)")
    degrade: bool = opt(False, "sr / denoise: first make the input from the image as training did (to compare with the original)")
    out: str = opt("", "output folder (default: <run>/predict)")
    device: str = opt("auto", "device", choices=DEVICES)


TranslateExportConfig = ExportConfig
