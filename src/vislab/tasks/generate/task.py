"""Image synthesis in a training run: the hooks of each kind of model, the model's construction, the job.

* **Autoencoders** (``ae``, ``dae``, ``vae``, ``cvae``): the default training step; the loss of an image is its
  reconstruction error (``bce``: pixels as Bernoulli probabilities, in nats; or ``mse``) plus, for VAEs, ``beta`` times
  the KL divergence of the code from the prior -- with ``beta = 1`` and ``bce`` the negative ELBO. A denoising
  autoencoder sees a corrupted image (gaussian, salt-and-pepper or masking noise, drawn per global batch) and is scored
  against the clean one. Validation: loss, PSNR and SSIM of the reconstructions (and of the noisy inputs for a DAE).
* **GANs** (``gan_mlp``, ``dcgan``, ``cgan``, ``wgan``, ``wgan_gp``): a step the task owns -- a critic update every
  batch, a generator update every ``n_critic`` batches; losses gan (non-saturating), hinge, wgan (with weight clipping),
  wgan-gp (gradient penalty at points between real and fake). Per-step numbers for the training-dynamics plot: both
  losses, D(x) and D(G(z)), the penalty, the Wasserstein estimate. EMA (``--ema-decay``) averages the generator only.
* **Diffusion** (``ddpm``, ``cddpm``): the default step on the noise-prediction loss at a random timestep (timestep
  and noise drawn per global batch); a conditional model drops the class of ``--cfg-drop`` of the samples
  (classifier-free guidance). Validation: the same loss at fixed timesteps and noise.

With ``--fid-extractor``, every epoch also generates ``--fid-samples`` images from fixed noise and measures their FID
against the validation images; the best checkpoint is then the lowest FID. Without it, a GAN keeps the latest epoch
as its best (its losses do not say which epoch is best).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core import config as C
from vislab.core.dist import all_reduce_sum
from vislab.core.errors import ConfigError, DataError
from vislab.data.classify.source import use_fast_path
from vislab.data.generate import GenBatch, GenStream, default_augment, load_gen_data
from vislab.engine.evaluate import eval_mode
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import LAST, Callback, FitResult, OptimizerSpec, StepContext, Trainer
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.generate.config import PRESETS, GenConfig, GenModelConfig, Preset
from vislab.report.history import read_metrics_csv, write_metrics_csv
from vislab.tasks.shared.model import build_registered, unwrap

TASK = "generate"
UNCONDITIONAL = {"cvae": "vae", "cgan": "dcgan", "cddpm": "ddpm"}
FIXED_NOISE_SEED = 12345  # the noise of every snapshot, picture and per-epoch FID (training's randomness is untouched)


# --------------------------------------------------------------------------------------------
# Pieces shared by training and the commands
# --------------------------------------------------------------------------------------------
def corrupt(x: torch.Tensor, kind: str, level: float, normal: torch.Tensor, uniform: torch.Tensor) -> torch.Tensor:
    """``x`` in [-1, 1] corrupted on the 0..1 scale: gaussian (``+ level * normal``), saltpepper (a share ``level`` of
    pixels set to black or white), mask (a share ``level`` of pixels set to black); ``normal`` is ``x``-shaped,
    ``uniform`` one value per pixel ``(B, 1, H, W)``. Clamped to the pixel range."""
    p = (x + 1) / 2
    if kind == "gaussian":
        p = p + level * normal
    elif kind == "saltpepper":
        p = torch.where(uniform < level / 2, torch.zeros_like(p), torch.where(uniform > 1 - level / 2, torch.ones_like(p), p))
    elif kind == "mask":
        p = torch.where(uniform < level, torch.zeros_like(p), p)
    elif kind != "none":
        raise ConfigError(f"--corrupt: expected one of none, gaussian, saltpepper, mask, got '{kind}'")
    return p.clamp(0, 1) * 2 - 1


def psnr_ssim(a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-image PSNR (dB) and SSIM of images in [-1, 1], on the 0..1 scale (``(B,)`` each)."""
    from torchmetrics.functional.image import structural_similarity_index_measure as ssim

    with torch.autocast(a.device.type, enabled=False):  # SSIM's variances need fp32 (called inside evaluation's autocast)
        a01, b01 = ((a.float() + 1) / 2).clamp(0, 1), ((b.float() + 1) / 2).clamp(0, 1)
        mse = (a01 - b01).pow(2).flatten(1).mean(1)
        psnr = 10 * torch.log10(1.0 / mse.clamp_min(1e-10))
        sigma = 0.8 if min(a.shape[-2:]) < 24 else 1.5  # the Gaussian window: 7 x 7 on small images, the usual 11 x 11 else
        return psnr, ssim(a01, b01, data_range=1.0, reduction="none", sigma=sigma)


def recon_loss(recon: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-image reconstruction loss, summed over pixels: bce (Bernoulli, nats) or mse, on the 0..1 scale."""
    p, t = ((recon.float() + 1) / 2), ((x.float() + 1) / 2)
    if kind == "bce":  # written out: F.binary_cross_entropy refuses to run under CUDA autocast
        p = p.clamp(1e-6, 1 - 1e-6)
        return -(t * torch.log(p) + (1 - t) * torch.log1p(-p)).flatten(1).sum(1)
    return (p - t).pow(2).flatten(1).sum(1)


def kl_normal(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """KL(N(mu, exp(logvar)) || N(0, I)) per sample, in nats."""
    return -0.5 * (1 + logvar.float() - mu.float().pow(2) - logvar.float().exp()).sum(1)


class SumMetrics:
    """Per-image sums of named numbers, all-reduced over processes; ``compute`` gives their means."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.n = 0.0

    def add(self, n: int, **values: torch.Tensor) -> None:
        self.n += n
        for k, v in values.items():
            self.sums[k] = self.sums.get(k, 0.0) + float(v.detach().float().sum())

    def sync(self) -> None:
        names = sorted(self.sums)
        t = all_reduce_sum(torch.tensor([self.n] + [self.sums[k] for k in names], dtype=torch.float64))
        self.n, self.sums = float(t[0]), dict(zip(names, t[1:].tolist(), strict=True))

    def compute(self) -> dict[str, float]:
        return {k: v / max(self.n, 1.0) for k, v in self.sums.items()}


# --------------------------------------------------------------------------------------------
# Per-epoch FID (optional)
# --------------------------------------------------------------------------------------------
class FidProbe:
    """FID / KID of ``n`` samples from fixed noise against the validation images, in an extractor's features."""

    def __init__(self, spec: str, n: int, device: torch.device):
        from vislab.tasks.generate.features import load_extractor

        self.extractor = load_extractor(spec, device)
        self.n, self.device = n, device
        self.real: list[torch.Tensor] | None = None
        self.state: dict[str, Any] = {}  # the run's checkpoint facts (kind, sizes, classes, guidance): set by setup

    def __call__(self, models: Any, stream: GenStream) -> dict[str, float]:
        """The numbers of ``models`` (the evaluation view: EMA weights where there are some)."""
        with torch.autocast(self.device.type, enabled=False):  # the features in fp32, as `eval` computes them
            return self._measure(lambda idx: fixed_samples(models, self.state, idx, self.n, self.device), stream)

    def _measure(self, draw, stream: GenStream) -> dict[str, float]:
        from vislab.core.dist import env_info
        from vislab.metrics.generative import GenerativeMetrics

        if self.real is None:  # the validation images' features, once
            self.real = _in_order([(b.index, self.extractor(b.x)[0].cpu()) for b in stream.epoch(0) if len(b)])
        d = env_info()
        idx = torch.arange(self.n)[d.rank::d.world]  # this process's share of the fixed samples
        fake = _in_order([(chunk, self.extractor(draw(chunk))[0].cpu()) for chunk in idx.split(256)])
        m = GenerativeMetrics(kid_subsets=20, kid_subset_size=min(500, self.n))
        m.update_real(self.real)
        m.update_fake(fake)  # already every process's, in order: no sync
        r = m.compute()
        return {"fid": r["fid"], "kid": r["kid"]}


def _in_order(pairs: list[tuple[torch.Tensor, torch.Tensor]]) -> torch.Tensor:
    """Features of every process, sorted by their global index: the same rows in the same order whatever the number of
    processes (KID's seeded subsets then pick the same samples)."""
    from vislab.core.dist import all_gather_list

    pairs = all_gather_list(pairs)
    index = torch.cat([i.reshape(-1).cpu() for i, _ in pairs])
    feats = torch.cat([f for _, f in pairs])
    return feats[index.argsort()]


# --------------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------------
class AETask:
    """Autoencoders: reconstruction (+ beta KL) with the default training step; see the module docstring."""

    monitor = "val_loss"
    shown = ("val_loss", "val_psnr", "val_ssim")
    stat_owners = {"loss": "the autoencoder", "recon": "the decoder", "kl": "the encoder"}

    def __init__(self, kind: str, conditional: bool, beta: float = 1.0, recon: str = "bce", corrupt: str = "none", level: float = 0.3):
        self.kind, self.conditional, self.beta, self.recon, self.corrupt, self.level = kind, conditional, beta, recon, corrupt, level

    def _forward(self, model: nn.Module, batch: GenBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor, torch.Tensor]:
        x, nz = batch.x, batch.noise
        inp = corrupt(x, self.corrupt, self.level, nz["cn"], nz["cu"]) if self.corrupt != "none" else x
        recon, mu, logvar = model(inp, batch.y if self.conditional else None, eps=nz.get("eps"))
        rec = recon_loss(recon, x, self.recon)
        parts = {"recon": rec}
        loss = rec
        if logvar is not None:
            kl = kl_normal(mu, logvar)
            parts["kl"] = kl
            loss = rec + self.beta * kl
        return loss, parts, recon, inp

    def train_step(self, model: nn.Module, batch: GenBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        loss, parts, _, _ = self._forward(model, batch)
        return loss.sum(), {k: v.sum().detach() for k, v in parts.items()}

    def new_metrics(self) -> SumMetrics:
        return SumMetrics()

    def eval_step(self, model: nn.Module, batch: GenBatch, metrics: SumMetrics) -> None:
        loss, parts, recon, inp = self._forward(model, batch)
        if "kl" in parts:  # PSNR / SSIM of the mean reconstruction (the code's mean), as `reconstruct` reports them
            recon = model(inp, batch.y if self.conditional else None, eps=torch.zeros_like(batch.noise["eps"]))[0]
        psnr, ssim = psnr_ssim(recon, batch.x)
        extra = {}
        if self.corrupt != "none":
            extra["noisy_psnr"], extra["noisy_ssim"] = psnr_ssim(inp, batch.x)
        if self.recon == "bce" and "kl" in parts:
            extra["elbo"] = -(parts["recon"] + parts["kl"])
        metrics.add(len(batch), loss=loss, psnr=psnr, ssim=ssim, **parts, **extra)


class GanTask:
    """The adversarial game on images (see the module docstring)."""

    ema_models = ("G",)
    shown = ("val_fid",)
    stat_owners = {"loss_d": "the critic D", "d_real": "the critic D", "d_fake": "the critic D", "gp": "the critic D", "w_dist": "the critic D",
                   "loss_g": "the generator G"}

    def __init__(self, loss: str = "gan", n_critic: int = 1, clip: float = 0.01, gp_weight: float = 10.0, conditional: bool = False,
                 probe: FidProbe | None = None):
        self.loss, self.n_critic, self.clip, self.gp_weight, self.conditional = loss, n_critic, clip, gp_weight, conditional
        self.probe = probe
        self.monitor = "val_fid" if probe is not None else LAST

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(("G",)), "D": OptimizerSpec(("D",))}

    def critic_loss(self, ctx: StepContext, real: torch.Tensor, fake: torch.Tensor, y: torch.Tensor | None, u: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Per-sample critic loss ``(b,)``, its scores on the real and the fake images, and the gradient penalty."""
        D = ctx.module("D")
        # real and fake in separate passes (DCGAN): with batch norm the critic then sees a fake-only batch as it
        # does in the generator's step -- a mixed batch would let the generator exploit the mismatch
        s_real, s_fake = D(real, y).float(), D(fake, y).float()
        if self.loss == "gan":
            return F.softplus(-s_real) + F.softplus(s_fake), s_real, s_fake, None
        if self.loss == "hinge":
            return F.relu(1 - s_real) + F.relu(1 + s_fake), s_real, s_fake, None
        if self.loss == "wgan":
            return s_fake - s_real, s_real, s_fake, None
        between = (u.view(-1, 1, 1, 1) * real + (1 - u.view(-1, 1, 1, 1)) * fake).requires_grad_(True)
        grad, = torch.autograd.grad(ctx.raw("D")(between, y).float().sum(), between, create_graph=True)
        gp = (grad.flatten(1).norm(dim=1) - 1).pow(2)
        return s_fake - s_real + self.gp_weight * gp, s_real, s_fake, gp

    def step(self, ctx: StepContext, batch: GenBatch) -> dict[str, torch.Tensor]:
        x, z = batch.x, batch.noise["z"]
        y = batch.y if self.conditional else None
        with torch.no_grad():
            fake = ctx.raw("G")(z[:, 0], y)
        loss_d, s_real, s_fake, gp = self.critic_loss(ctx, x, fake, y, batch.noise["u"])
        ctx.backward(loss_d.sum(), "D")
        ctx.step("D")
        if self.loss == "wgan":  # the Lipschitz constraint of the original WGAN: clip every critic weight
            with torch.no_grad():
                for p in ctx.raw("D").parameters():
                    p.clamp_(-self.clip, self.clip)
        prob = self.loss == "gan"  # D(x) as a probability for the classic loss, the raw score otherwise
        stats = {"loss_d": loss_d.sum().detach(),
                 "d_real": (torch.sigmoid(s_real) if prob else s_real).sum().detach(),
                 "d_fake": (torch.sigmoid(s_fake) if prob else s_fake).sum().detach()}
        if self.loss in ("wgan", "wgan-gp"):
            stats["w_dist"] = (s_real - s_fake).sum().detach()  # the critic's estimate of the Wasserstein distance
        if gp is not None:
            stats["gp"] = gp.sum().detach()
        if ctx.batch_index % self.n_critic == 0:
            scores = ctx.raw("D")(ctx.module("G")(z[:, 1], y), y).float()  # D only judges: no gradients for it
            loss_g = F.softplus(-scores) if self.loss == "gan" else -scores
            ctx.backward(loss_g.sum(), "G")
            ctx.step("G")
            stats["loss_g"] = loss_g.sum().detach()
        return stats

    def evaluate(self, models: dict[str, nn.Module], stream: GenStream, epoch: int) -> dict[str, float]:
        return self.probe(models, stream)


class DiffusionTask:
    """Denoising diffusion: the noise-prediction loss at a random timestep (see the module docstring)."""

    monitor = "val_loss"
    shown = ("val_loss", "val_fid")
    stat_owners = {"loss": "the denoising U-Net"}

    def __init__(self, conditional: bool = False, cfg_drop: float = 0.1, probe: FidProbe | None = None):
        self.conditional, self.cfg_drop, self.probe = conditional, cfg_drop, probe
        if probe is not None:
            self.monitor = "val_fid"

    def _loss(self, model: nn.Module, batch: GenBatch, train: bool) -> torch.Tensor:
        """Per-sample loss; through ``model``'s forward (``Diffusion.forward`` is the loss), so DDP synchronises it."""
        nz = batch.noise
        y = batch.y if self.conditional else None
        drop = (nz["u"] < self.cfg_drop) if (train and y is not None) else None
        return model(batch.x, nz["t"], nz["eps"], y, drop)

    def train_step(self, model: nn.Module, batch: GenBatch) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self._loss(model, batch, True).sum(), {}

    def new_metrics(self) -> SumMetrics:
        return SumMetrics()

    def eval_step(self, model: nn.Module, batch: GenBatch, metrics: SumMetrics) -> None:
        metrics.add(len(batch), loss=self._loss(model, batch, False))

    def evaluate(self, model: nn.Module, stream: GenStream, epoch: int) -> dict[str, float]:
        from vislab.engine.evaluate import run_eval

        out = run_eval(self, model, stream, None, epoch).compute()
        if self.probe is not None:
            out.update(self.probe(model, stream))
        return out


def fixed_normal(n: int, shape: tuple[int, ...], seed: int = FIXED_NOISE_SEED) -> torch.Tensor:
    """The same ``(n, *shape)`` standard normal noise every time (its own generator)."""
    return torch.randn((n, *shape), generator=torch.Generator().manual_seed(seed))


def fixed_samples(models: Any, state: dict[str, Any], idx: torch.Tensor, n: int, device: torch.device) -> torch.Tensor:
    """Samples ``idx`` of the ``n`` fixed-noise samples of a GAN or diffusion model (diffusion: 20 DDIM steps), the
    classes in turn for conditional models: the snapshots, the report's grid and the per-epoch FID draw the same ones."""
    n_cls = state["num_classes"] if state["conditional"] else 0
    y = (idx % n_cls).to(device) if n_cls else None
    if state["kind"] == "gan":
        return unwrap(models["G"])(fixed_normal(n, (state["z_dim"],))[idx].to(device), y).float()
    net = unwrap(models)
    c, s = state["channels"], state["img_size"][0]
    return net.sample(len(idx), steps=min(20, net.timesteps), sampler="ddim", noise=fixed_normal(n, (c, s, s))[idx].to(device), y=y,
                      guidance=state["guidance"] if n_cls else 1.0).float()


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------
def resolved(m: GenModelConfig) -> dict[str, Any]:
    """The settings ``--model``'s preset fills in where the config says auto / 0."""
    p: Preset = PRESETS[m.model]
    loss = p.loss if m.loss == "auto" else m.loss
    d_norm = m.d_norm
    if d_norm == "auto":
        d_norm = "layer" if loss == "wgan-gp" else ("none" if m.spectral_norm else p.d_norm)
    return {"kind": p.kind, "arch": p.arch, "conditional": p.conditional, "loss": loss,
            "n_critic": m.n_critic or (5 if loss in ("wgan", "wgan-gp") else 1),
            "corrupt": (p.corrupt if m.corrupt == "auto" else m.corrupt) if p.kind == "ae" else "none",
            "z_dim": m.z_dim or (16 if p.kind in ("ae", "vae") else 64), "d_norm": d_norm,
            "width": m.width or (256 if p.arch == "gan_mlp" else 32)}


def parse_mults(text: str) -> list[int]:
    try:
        mults = [int(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        mults = []
    if not mults or min(mults) < 1:
        raise ConfigError(f"--mults: expected a comma list of positive integers such as 1,2,2, got '{text}'")
    return mults


def model_args(m: GenModelConfig, channels: int, img_size: int, num_classes: int) -> tuple[str, dict[str, Any]]:
    """The registered builder and its arguments for ``--model`` on images of ``channels`` x ``img_size``^2."""
    r = resolved(m)
    n_cls = num_classes if r["conditional"] else 0
    common = {"in_chans": channels, "img_size": img_size}
    if r["arch"] == "conv_ae":
        return "conv_ae", {**common, "z_dim": r["z_dim"], "width": r["width"]}
    if r["arch"] == "vae":
        return "vae", {**common, "z_dim": r["z_dim"], "width": r["width"], "num_classes": n_cls}
    if r["arch"] == "gan_mlp":
        return "gan_mlp", {**common, "z_dim": r["z_dim"], "hidden": r["width"], "num_classes": n_cls, "spectral_norm": m.spectral_norm}
    if r["arch"] == "dcgan":
        return "dcgan", {**common, "z_dim": r["z_dim"], "width": r["width"], "num_classes": n_cls, "g_norm": m.g_norm,
                         "d_norm": r["d_norm"], "spectral_norm": m.spectral_norm}
    return "ddpm", {**common, "width": r["width"], "mults": parse_mults(m.mults), "attn": m.attn, "timesteps": m.timesteps,
                    "schedule": m.schedule, "num_classes": n_cls}


def build_model(m: GenModelConfig, channels: int, img_size: int, num_classes: int) -> tuple[Any, str, dict[str, Any]]:
    """The model (a ModuleDict {"G", "D"} for GANs), its registry name and the arguments that rebuild it."""
    name, args = model_args(m, channels, img_size, num_classes)
    model, args = build_registered(name, TASK, args)
    return (dict(model) if isinstance(model, nn.ModuleDict) else model), name, args


def validate(cfg: GenConfig) -> None:
    """Image synthesis's own checks (the shared ranges: :func:`vislab.tasks.base.validate_train`)."""
    m = cfg.model
    r = resolved(m)
    check_all([(m.z_dim >= 0, "--z-dim", ">= 1 (0: the model's)", m.z_dim), (m.width >= 0, "--width", ">= 1 (0: the model's)", m.width),
               (m.n_critic >= 0, "--n-critic", ">= 1 (0: the model's)", m.n_critic), (m.clip > 0, "--clip", "> 0", m.clip),
               (m.gp_weight >= 0, "--gp-weight", ">= 0", m.gp_weight), (m.beta >= 0, "--beta", ">= 0", m.beta),
               (0 <= m.corrupt_level <= 1, "--corrupt-level", "in [0, 1]", m.corrupt_level), (m.timesteps >= 2, "--timesteps", ">= 2", m.timesteps),
               (0 <= m.cfg_drop < 1, "--cfg-drop", "in [0, 1)", m.cfg_drop), (m.guidance >= 0, "--guidance", ">= 0", m.guidance),
               (m.sample_every >= -1, "--sample-every", ">= 1, 0 (20 over the run) or -1 (none)", m.sample_every), (m.fid_samples >= 10, "--fid-samples", ">= 10", m.fid_samples)])
    parse_mults(m.mults)
    if r["kind"] == "gan" and cfg.train.accumulate != 1:  # the generator updates every --n-critic batches
        raise ConfigError(f"--accumulate: expected 1 for a GAN (it alternates its updates batch by batch), got {cfg.train.accumulate}")
    if r["loss"] == "wgan-gp" and r["d_norm"] == "batch":
        raise ConfigError("--d-norm batch: expected a critic without batch norm for wgan-gp (the penalty is per sample): use layer, instance or none")
    if m.loss != "auto" and r["kind"] != "gan":
        raise ConfigError(f"--loss {m.loss}: expected a GAN model for an adversarial loss, got --model {m.model} (autoencoders: --recon-loss)")
    if m.corrupt not in ("auto", "none") and r["kind"] != "ae":
        raise ConfigError(f"--corrupt {m.corrupt}: expected --model dae (or ae) for input corruption, got --model {m.model}")
    if m.model == "dae" and r["corrupt"] == "none":
        raise ConfigError("--corrupt none: expected a corruption for a denoising autoencoder (gaussian, saltpepper, mask); --model ae has none")


# --------------------------------------------------------------------------------------------
# The training job
# --------------------------------------------------------------------------------------------
def noise_spec(r: dict[str, Any], channels: int, img_size: int, timesteps: int) -> dict[str, tuple[str, object]]:
    """The noise each kind of model draws per global batch (see :class:`vislab.data.generate.GenStream`)."""
    if r["kind"] == "gan":
        return {"z": ("normal", (2, r["z_dim"])), "u": ("uniform", ())}  # z[:, 0] critic step, z[:, 1] generator step
    if r["kind"] == "diffusion":
        return {"eps": ("normal", (channels, img_size, img_size)), "t": ("int", timesteps), "u": ("uniform", ())}
    spec: dict[str, tuple[str, object]] = {"eps": ("normal", (r["z_dim"],))} if r["kind"] == "vae" else {}
    if r["corrupt"] != "none":
        spec.update(cn=("normal", (channels, img_size, img_size)), cu=("uniform", (1, img_size, img_size)))
    return spec


def setup(cfg: GenConfig, ctx: WorkerContext) -> GenJob:
    """Data, model(s), streams and hooks of an image-synthesis run in this process."""
    tc, dist, m = cfg.train, ctx.dist, cfg.model
    splits = load_gen_data(cfg.data)
    tr = splits.train
    r = resolved(m)
    if r["conditional"] and len(tr.classes) < 2:
        raise DataError(f"--model {m.model}: expected images of two classes or more (class folders) for a conditional model, "
                        f"got {len(tr.classes)} class ('{tr.classes[0]}'); use --model {UNCONDITIONAL[m.model]} for unlabelled images")
    fast = use_fast_path(cfg.data, tr)
    if fast and not tr.in_memory:
        tr = tr.materialize()
        splits.train = tr
        splits.val = splits.val.materialize() if splits.val is not None else None
    torch.manual_seed(tc.seed)
    size = tr.size[0]
    model, name, args = build_model(m, tr.channels, size, len(tr.classes))
    probe = FidProbe(m.fid_extractor, m.fid_samples, ctx.device) if m.fid_extractor and r["kind"] in ("gan", "diffusion") else None
    if probe is not None and (splits.val is None or len(splits.val) < 2):
        raise ConfigError(f"--fid-extractor: expected validation images to compare samples with, got {len(splits.val) if splits.val is not None else 0} "
                          f"(--val-split {cfg.data.val_split})")
    if m.fid_extractor and probe is None:
        raise ConfigError(f"--fid-extractor: expected a GAN or diffusion model (autoencoders are monitored by their loss), got --model {m.model}")
    if r["kind"] == "gan":
        hooks: Any = GanTask(r["loss"], r["n_critic"], m.clip, m.gp_weight, r["conditional"], probe)
    elif r["kind"] == "diffusion":
        hooks = DiffusionTask(r["conditional"], m.cfg_drop, probe)
    else:
        hooks = AETask(r["kind"], r["conditional"], m.beta, m.recon_loss, r["corrupt"], m.corrupt_level)
    spec = noise_spec(r, tr.channels, size, m.timesteps)
    common = {"noise": spec, "seed": tc.seed, "rank": dist.rank, "world": dist.world, "device": ctx.device, "workers": cfg.data.workers,
              "fast_path": fast, "channels_last": ctx.precision.channels_last}
    train = GenStream(tr, cfg.data.batch_size, train=True, augment=default_augment(cfg.data, tr), **common)
    has_val = splits.val is not None and len(splits.val) > 0
    val = GenStream(splits.val, cfg.data.eval_batch(), train=False, **common) if has_val and (r["kind"] != "gan" or probe is not None) else None
    ckpt_state = {"task": TASK, "model": name, "model_args": args, "preset": m.model, "kind": r["kind"], "conditional": r["conditional"],
                  "classes": tr.classes, "num_classes": len(tr.classes), "img_size": [size, size], "channels": tr.channels,
                  "z_dim": r["z_dim"] if r["kind"] != "diffusion" else 0, "corrupt": r["corrupt"], "corrupt_level": m.corrupt_level,
                  "guidance": m.guidance, "loss": r["loss"] if r["kind"] == "gan" else (m.recon_loss if r["kind"] != "diffusion" else "eps-mse"), "dataset": tr.name, "config": C.to_dict(cfg)}
    if probe is not None:
        probe.state = ckpt_state
    n_val = len(splits.val) if has_val else 0
    what = {"gan": f"{r['loss']} loss, {r['n_critic']} critic step(s) per generator step", "diffusion": f"{m.timesteps} steps, {m.schedule} schedule",
            "ae": f"{m.recon_loss} reconstruction" + (f", {r['corrupt']} corruption {m.corrupt_level:g}" if r["corrupt"] != "none" else ""),
            "vae": f"{m.recon_loss} reconstruction + {m.beta:g} x KL"}[r["kind"]]
    log = [f"vislab generate: {m.model} ({name}, {sum(p.numel() for p in _params(model)):,} parameters; {what}) on {tr.name} "
           f"({len(tr)} train, {n_val} val images, {tr.channels} x {size} x {size}, {len(tr.classes)} class(es)) | {ctx.device} "
           f"{ctx.precision.name} | {dist.world} process(es) -> {ctx.run_dir}"]
    if probe is not None:
        log.append(f"FID each epoch: {m.fid_samples} samples vs {n_val} val images in the features of {probe.extractor.name}")
    elif r["kind"] == "gan":
        log.append("best checkpoint = the last epoch (pass --fid-extractor RUN to keep the lowest FID)")
    job = GenJob(hooks, model, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, splits=splits, kind=r["kind"],
                 resume_keys=("task", "model", "model_args", "num_classes"))
    if dist.is_main:
        job.snapshot_every = m.sample_every if m.sample_every else max(1, len(train) * tc.epochs // 20)
        job.callbacks.append(Callback(on_step_end=job.on_step))
    return job


def _params(model: Any) -> list[torch.Tensor]:
    mods = model.values() if isinstance(model, dict) else [model]
    return [p for mod in mods for p in mod.parameters()]


@dataclass(kw_only=True)
class GenJob(TrainJob):
    """An image-synthesis run: fixed-noise snapshots and per-step dynamics during training; numbers and pictures after."""

    splits: Any
    kind: str
    models: Any = None
    snapshot_every: int = 0
    last_step: int = 0
    dynamics: list[dict[str, float]] = field(default_factory=list)

    def configure(self, trainer: Trainer, model: Any) -> None:
        self.models = model
        path = self.ctx.run_dir / "dynamics.csv"
        last = self.ctx.run_dir / "checkpoints" / "last.json"
        if path.is_file() and last.is_file():  # a resumed run: the steps up to its checkpoint (a kill may have come after)
            step = json.loads(last.read_text()).get("step", 0)
            self.dynamics = [d for d in read_metrics_csv(path) if d["step"] <= step]

    # -- during training ---------------------------------------------------------------------
    def on_step(self, step: int, means: dict[str, float]) -> None:
        self.last_step = step
        if self.kind == "gan":
            self.dynamics.append({"step": step, **{k[len("train_"):]: v for k, v in means.items()}})
            if step % len(self.train) == 0:  # the epoch's last step: written before its checkpoint (a kill between the
                write_metrics_csv(self.ctx.run_dir / "dynamics.csv", self.dynamics)  # two is trimmed at resume)
        if self.snapshot_every > 0 and step % self.snapshot_every == 0:
            self.snapshot(step)

    def snapshot(self, step: int, label: str = "") -> None:
        """A grid of the current model's pictures of fixed noise (autoencoders: reconstructions of fixed val images)."""
        from vislab.tasks.generate.report import save_grid

        with torch.no_grad(), eval_mode(self.models):
            imgs = pictures(self.models, self.kind, self.ckpt_state, self.splits, 64, self.ctx.device)
        dest = self.ctx.run_dir / "snapshots" / f"step_{step:06d}.png"
        dest.parent.mkdir(exist_ok=True)
        save_grid(imgs, dest, nrow=8, label=label or f"step {step}")

    # -- after training ----------------------------------------------------------------------
    def finish(self, trainer: Trainer, model: Any, result: FitResult) -> dict[str, Any]:
        self.test_best(trainer, model, None)
        out: dict[str, Any] = {}
        if self.kind in ("ae", "vae") and self.ctx.dist.is_main:
            save_latents(self.best, self.splits.train, self.ckpt_state, self.ctx.run_dir / "latents.safetensors", self.ctx.device)
        if self.val is not None and self.kind in ("ae", "vae"):
            from vislab.engine.evaluate import run_eval

            final = run_eval(self.hooks, self.best, self.val, self.ctx.precision).compute()
            trainer.progress.log("best checkpoint on val: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))
            out = {f"final_val_{k}": v for k, v in final.items()}
        return out

    def report(self, trainer: Trainer, model: Any, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.generate.report import write_training_report

        with torch.no_grad(), eval_mode(self.best):
            imgs = pictures(self.best, self.kind, self.ckpt_state, self.splits, 64, self.ctx.device)
        write_training_report(self.ctx.run_dir, result, final, imgs, self.kind, self.dynamics)


def pictures(models: Any, kind: str, state: dict[str, Any], splits: Any, n: int, device: torch.device) -> torch.Tensor:
    """What a snapshot shows: samples of fixed noise (GANs, diffusion: :func:`fixed_samples`), or reconstructions of
    the first validation images (autoencoders: originals, or their noisy versions, and reconstructions in alternate rows)."""
    if kind in ("gan", "diffusion"):
        return fixed_samples(models, state, torch.arange(n), n, device)
    net = unwrap(models)
    src = splits.val if splits.val is not None and len(splits.val) else splits.train
    from vislab.data.generate import scale

    k = min(n // 2, len(src))
    x = scale(torch.stack([src.get(i) for i in range(k)])).to(device)
    yy = src.labels[:k].to(device) if state["conditional"] else None
    if state.get("corrupt", "none") != "none":
        g = torch.Generator().manual_seed(FIXED_NOISE_SEED)
        x_in = corrupt(x, state["corrupt"], state["corrupt_level"], torch.randn(x.shape, generator=g).to(device),
                       torch.rand((k, 1, *x.shape[-2:]), generator=g).to(device))
    else:
        x_in = x
    recon = net.decode(net.encode(x_in, yy)[0], yy).float()  # the mean reconstruction
    rows = []
    for i in range(0, k, 8):  # originals (or the noisy inputs) and reconstructions in alternate rows of 8
        rows += [x_in[i:i + 8], recon[i:i + 8]]
    return torch.cat(rows)


def save_latents(model: nn.Module, src: Any, state: dict[str, Any], path, device: torch.device) -> None:
    """The training codes' mean and covariance factor: ``sample`` draws an autoencoder's codes from this Gaussian
    (a plain autoencoder has no prior; for a VAE it shows how far the aggregate posterior is from N(0, I))."""
    from safetensors.torch import save_file

    from vislab.core.io import atomic_path
    from vislab.data.generate import scale

    net = unwrap(model)
    mus = []
    with torch.no_grad(), eval_mode(net):
        for idx in torch.arange(len(src)).split(256):
            x = scale(torch.stack([src.get(int(i)) for i in idx])).to(device)
            mus.append(net.encode(x, src.labels[idx].to(device) if state["conditional"] else None)[0].float().cpu())
    z = torch.cat(mus).double()
    mean = z.mean(0)
    cov = torch.cov(z.T) + 1e-5 * torch.eye(z.shape[1], dtype=z.dtype) if len(z) > 1 else torch.eye(z.shape[1], dtype=z.dtype)
    chol = torch.linalg.cholesky(cov.reshape(z.shape[1], z.shape[1]))
    with atomic_path(path) as tmp:
        save_file({"mean": mean.float().contiguous(), "chol": chol.float().contiguous()}, str(tmp))
