"""Image synthesis's configs: training (data, model, train, run), the model presets, and each command's config."""

from __future__ import annotations

from dataclasses import dataclass, field

from vislab.core.config import opt
from vislab.data.generate import GenDataConfig
from vislab.engine.config import RunConfig, TrainConfig
from vislab.tasks.shared.export import ExportConfig

DEVICES = ("auto", "cpu", "cuda", "mps")
GAN_LOSSES = ("gan", "hinge", "wgan", "wgan-gp")
CORRUPTIONS = ("none", "gaussian", "saltpepper", "mask")


@dataclass(frozen=True)
class Preset:
    """What ``--model NAME`` means: the kind of model (autoencoder, vae, gan, diffusion), its network, its defaults."""

    kind: str  # ae | vae | gan | diffusion
    arch: str  # the registered builder
    conditional: bool = False
    loss: str = ""  # GANs: the adversarial loss
    n_critic: int = 1
    corrupt: str = "none"
    d_norm: str = "batch"
    summary: str = ""


PRESETS: dict[str, Preset] = {
    "ae": Preset("ae", "conv_ae", summary="convolutional autoencoder"),
    "dae": Preset("ae", "conv_ae", corrupt="gaussian", summary="denoising autoencoder (gaussian, salt-and-pepper or masking noise)"),
    "vae": Preset("vae", "vae", summary="variational autoencoder (beta-VAE with --beta)"),
    "cvae": Preset("vae", "vae", conditional=True, summary="class-conditional VAE"),
    "gan_mlp": Preset("gan", "gan_mlp", loss="gan", summary="fully connected GAN (Goodfellow et al. 2014)"),
    "dcgan": Preset("gan", "dcgan", loss="gan", summary="DCGAN (Radford et al. 2016)"),
    "cgan": Preset("gan", "dcgan", conditional=True, loss="gan", summary="class-conditional DCGAN (projection critic)"),
    "wgan": Preset("gan", "dcgan", loss="wgan", n_critic=5, summary="WGAN with weight clipping (Arjovsky et al. 2017)"),
    "wgan_gp": Preset("gan", "dcgan", loss="wgan-gp", n_critic=5, d_norm="layer", summary="WGAN-GP: gradient penalty (Gulrajani et al. 2017)"),
    "ddpm": Preset("diffusion", "ddpm", summary="denoising diffusion (DDPM / DDIM sampling)"),
    "cddpm": Preset("diffusion", "ddpm", conditional=True, summary="class-conditional diffusion with classifier-free guidance"),
}


@dataclass
class GenModelConfig:
    """The generative model and how it learns."""

    model: str = opt("dcgan", "; ".join(f"{k}: {p.summary}" for k, p in PRESETS.items()), choices=tuple(PRESETS))
    z_dim: int = opt(0, "latent size (0: 16 for autoencoders, 64 for GANs)")
    width: int = opt(0, "channels of the first / last conv layer (0: 32; try 64 for 64 px faces); gan_mlp: hidden units (0: 256)")
    # GANs
    loss: str = opt("auto", "GAN loss: gan (non-saturating), hinge, wgan (weight clipping), wgan-gp (auto: the model's)", choices=("auto", *GAN_LOSSES))
    n_critic: int = opt(0, "critic updates per generator update (0: the model's: 5 for wgan / wgan_gp, else 1)")
    clip: float = opt(0.01, "wgan: clip every critic weight to [-clip, clip] after each critic step")
    gp_weight: float = opt(10.0, "wgan-gp: weight of the gradient penalty")
    spectral_norm: bool = opt(False, "spectral normalisation of every critic layer (Miyato et al. 2018)")
    g_norm: str = opt("batch", "normalisation in the generator", choices=("batch", "instance", "layer", "none"))
    d_norm: str = opt("auto", "normalisation in the critic (auto: layer for wgan-gp, none with --spectral-norm, else batch)",
                      choices=("auto", "batch", "instance", "layer", "none"))
    # autoencoders
    beta: float = opt(1.0, "vae: weight of the KL term (beta-VAE; 1 is the ELBO)")
    recon_loss: str = opt("bce", "reconstruction loss of autoencoders: bce (pixels as Bernoulli probabilities; the ELBO in nats) or mse",
                          choices=("bce", "mse"))
    corrupt: str = opt("auto", "dae: corruption of the input (auto: gaussian for dae, none otherwise)", choices=("auto", *CORRUPTIONS))
    corrupt_level: float = opt(0.3, "dae: noise std (gaussian, on the 0..1 pixel scale) or share of pixels (saltpepper, mask)")
    # diffusion
    timesteps: int = opt(1000, "diffusion steps of the forward process")
    schedule: str = opt("linear", "noise schedule (betas): linear (Ho et al.) or cosine (Nichol & Dhariwal)", choices=("linear", "cosine"))
    mults: str = opt("1,2,2", "U-Net channel multipliers per resolution level (comma list)")
    attn: bool = opt(True, "U-Net self-attention at the lowest resolution")
    cfg_drop: float = opt(0.1, "cddpm: share of training samples without their class (classifier-free guidance)")
    guidance: float = opt(3.0, "cddpm: default guidance scale of sampling (1: conditional only)")
    # pictures and monitoring during training
    sample_every: int = opt(0, "every this many steps, a grid of the model's samples of fixed noise for progress.gif (0: 20 grids over the run; -1: none)")
    fid_extractor: str = opt("", "FID each epoch against the validation images, in the features of a vislab classify run (folder) or "
                                  "inception:FILE (torchvision Inception-v3 weights); the best checkpoint is then the lowest FID")
    fid_samples: int = opt(500, "samples generated for the FID of each epoch")


def _train_defaults() -> TrainConfig:
    # Adam(2e-4, beta1 0.5): the DCGAN paper's settings, good for the autoencoders and the U-Net too on these scales
    return TrainConfig(epochs=10, optimizer="adam", lr=2e-4, momentum=0.5, weight_decay=0.0, scheduler="constant")


@dataclass
class GenConfig:
    """``vislab generate train``: everything an image-synthesis run is made of."""

    data: GenDataConfig = field(default_factory=lambda: GenDataConfig(batch_size=64))
    model: GenModelConfig = field(default_factory=GenModelConfig)
    train: TrainConfig = field(default_factory=_train_defaults)
    run: RunConfig = field(default_factory=RunConfig)


@dataclass
class SampleConfig:
    """``vislab generate sample``: new images from a trained model."""

    checkpoint: str = opt("", "checkpoint file or run folder (uses checkpoints/best.safetensors)", cli=False)
    n: int = opt(64, "images to draw")
    class_: int = opt(-1, "class to draw (conditional models; -1: every class in turn)")
    steps: int = opt(0, "diffusion: denoising steps (0: all timesteps for ddpm, 50 for ddim)")
    sampler: str = opt("ddpm", "diffusion sampler: ddpm (stochastic) or ddim (deterministic with --eta 0)", choices=("ddpm", "ddim"))
    eta: float = opt(0.0, "ddim: noise of each step (0: deterministic, 1: like ddpm)")
    guidance: float = opt(0.0, "cddpm: classifier-free guidance scale (0: the run's --guidance)")
    frames: int = opt(0, "diffusion: also write denoising.gif with this many steps of the chain (0: none)")
    seed: int = opt(0, "seed of the noise")
    out: str = opt("", "output folder (default: <run>/samples)")
    batch_size: int = opt(256, "images per forward pass")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class InterpolateConfig:
    """``vislab generate interpolate``: walks through the latent space between pairs of points."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    steps: int = opt(10, "images per walk, end points included")
    pairs: int = opt(6, "walks (rows of the grid)")
    method: str = opt("auto", "lerp (straight line) or slerp (great circle: stays at the norm of Gaussian noise); auto: slerp for noise, lerp for codes",
                      choices=("auto", "lerp", "slerp"))
    source: str = opt("auto", "end points: images (the codes of validation images; autoencoders) or noise (random latents); auto: images for autoencoders",
                      choices=("auto", "images", "noise"))
    class_: int = opt(-1, "conditional models: the class of every walk (-1: the first end image's class, or the classes in turn for noise)")
    seed: int = opt(0, "seed of the end points")
    out: str = opt("", "output folder (default: <run>/interpolate)")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class ReconstructConfig:
    """``vislab generate reconstruct``: images through an autoencoder, with PSNR / SSIM."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "images or folders (default: the run's validation images)", cli=False, optional=True)
    n: int = opt(64, "images shown in the before/after grid")
    out: str = opt("", "output folder (default: <run>/reconstruct)")
    batch_size: int = opt(256, "images per forward pass")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class DenoiseConfig:
    """``vislab generate denoise``: noisy images through a (denoising) autoencoder, with PSNR / SSIM before and after."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    inputs: list[str] = opt([], "images or folders (default: the run's validation images)", cli=False, optional=True)
    noise: float = opt(0.3, "noise level: std on the 0..1 pixel scale (gaussian) or share of pixels (saltpepper, mask)")
    kind: str = opt("auto", "corruption (auto: the one the run trained with; gaussian for other autoencoders)", choices=("auto", *CORRUPTIONS[1:]))
    n: int = opt(32, "images shown in the noisy / denoised / clean grid")
    seed: int = opt(0, "seed of the noise")
    out: str = opt("", "output folder (default: <run>/denoise)")
    batch_size: int = opt(256, "images per forward pass")
    device: str = opt("auto", "device", choices=DEVICES)


@dataclass
class GenEvalConfig:
    """``vislab generate eval``: FID, KID, precision / recall of samples; reconstruction numbers of autoencoders."""

    checkpoint: str = opt("", "checkpoint file or run folder", cli=False)
    extractor: str = opt("auto", "features for FID / KID: a vislab classify run trained on the same kind of images (folder or checkpoint), "
                                 "inception:FILE (torchvision Inception-v3 weights), or auto (the run's --fid-extractor, else Inception "
                                 "weights in $TORCH_HOME; autoencoders: none needed for reconstruction numbers)")
    n: int = opt(1000, "samples to generate (the real side: as many validation images, at most all of them)")
    real: str = opt("val", "real images to compare with: the run's val or train split", choices=("val", "train"))
    steps: int = opt(50, "diffusion: denoising steps of the samples")
    sampler: str = opt("ddim", "diffusion: sampler of the samples", choices=("ddpm", "ddim"))
    guidance: float = opt(0.0, "cddpm: guidance scale (0: the run's)")
    seed: int = opt(0, "seed of the samples")
    out: str = opt("", "output folder for metrics.json (default: <run>/eval)")
    batch_size: int = opt(256, "images per forward pass")
    device: str = opt("auto", "device", choices=DEVICES)


# ``vislab generate export`` takes the shared export options (format, out, opset, atol)
GenExportConfig = ExportConfig
