"""Image-to-image translation in a training run: the hooks, the models' construction, the job.

* **Paired and made pairs** (:class:`PairTask`: ``pix2pix``, ``paired_l1``, ``colorize``, ``colorize_gan``, the
  super-resolution models, ``dncnn``): the generator ``G`` maps the input ``a`` to the target ``b`` under a pixel loss
  (L1 or MSE) plus, where the model has one, a perceptual loss (features of ``--features``) and an adversarial loss
  from a PatchGAN ``D`` -- conditional on the input for pix2pix and colorization (it judges ``(a, b)`` pairs), on the
  output alone for super-resolution. With a critic, each batch makes one critic step and one generator step.
* **Unpaired** (:class:`CycleTask`: ``cyclegan``): generators ``G_AB`` and ``G_BA``, critics ``D_A`` and ``D_B``;
  the generators' loss is the adversarial one of both directions plus ``--cycle-weight`` times the cycle losses
  ``|G_BA(G_AB(a)) - a|`` and ``|G_AB(G_BA(b)) - b|`` plus the identity losses; the critics learn from a pool of the
  last ``--pool-size`` generated images (emptied at every epoch start, so a resumed run repeats it exactly).

Validation numbers (:func:`pair_metrics`): PSNR and SSIM (super-resolution: also on the Y channel with the border
cropped, and the bicubic baseline's; denoising: the noisy input's), the L1 error, colorization's ab error next to the
"mean colour" baseline and the colourfulness of outputs and targets, CycleGAN's cycle errors.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from vislab.core import config as C
from vislab.core.errors import ConfigError
from vislab.data.translate import TranslateData, load_translate_data
from vislab.data.translate.stream import Maker, PairStream, TBatch, lab_pair, lab_to_image
from vislab.engine.evaluate import eval_mode
from vislab.engine.launch import WorkerContext
from vislab.engine.trainer import LAST, Callback, FitResult, OptimizerSpec, StepContext, Trainer
from vislab.metrics.image_quality import ImageQuality
from vislab.report.history import read_metrics_csv, write_metrics_csv
from vislab.tasks.base import TrainJob, check_all
from vislab.tasks.shared.model import build_registered, unwrap
from vislab.tasks.translate.config import PRESETS, Preset, TranslateConfig, TranslateModelConfig

TASK = "translate"


# --------------------------------------------------------------------------------------------
# Losses
# --------------------------------------------------------------------------------------------
def per_sample(x: torch.Tensor) -> torch.Tensor:
    return x.float().flatten(1).mean(1)


def pixel_loss(out: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample mean L1 or squared error."""
    d = out.float() - target.float()
    return per_sample(d.abs() if kind == "l1" else d * d)


def critic_loss(s_real: torch.Tensor, s_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample critic loss from PatchGAN score maps (the mean over patches)."""
    r, f = s_real.float(), s_fake.float()
    if kind == "gan":
        return per_sample(F.softplus(-r)) + per_sample(F.softplus(f))
    if kind == "lsgan":
        return 0.5 * (per_sample((r - 1) ** 2) + per_sample(f ** 2))
    return per_sample(F.relu(1 - r)) + per_sample(F.relu(1 + f))


def generator_adv(s_fake: torch.Tensor, kind: str) -> torch.Tensor:
    """Per-sample adversarial loss of the generator (non-saturating, least squares, or hinge's ``-D``)."""
    f = s_fake.float()
    if kind == "gan":
        return per_sample(F.softplus(-f))
    if kind == "lsgan":
        return per_sample((f - 1) ** 2)
    return per_sample(-f)


class Perceptual:
    """Per-sample mean L1 distance of ``--features`` activations (frozen network) at its content layers."""

    def __init__(self, spec: str, device: torch.device):
        from vislab.tasks.shared.features import load_feature_net

        self.net = load_feature_net(spec, device=device)
        self.layers = list(self.net.default_content)
        self.name, self.note = self.net.name, getattr(self.net, "note", "")

    def __call__(self, out: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        fo = self.net(out.float(), self.layers)  # stops at the last content layer
        with torch.no_grad():
            ft = self.net(target.float(), self.layers)
        return sum(per_sample((fo[k] - ft[k]).abs()) for k in self.layers)


# --------------------------------------------------------------------------------------------
# Metrics
# --------------------------------------------------------------------------------------------
def to01(x: torch.Tensor) -> torch.Tensor:
    return ((x.float() + 1) / 2).clamp(0, 1)


def as_image(x: torch.Tensor, a: torch.Tensor, make: str) -> torch.Tensor:
    """A model output (or target) as an image in [-1, 1]: colorization's ab joined with the input's L."""
    return lab_to_image(a, x) if make == "colorize" else x.float().clamp(-1, 1)


def pair_metrics(a: torch.Tensor, out: torch.Tensor, b: torch.Tensor, make: str, scale: int, mean_ab: tuple[float, float] | None = None) -> dict[str, torch.Tensor]:
    """Per-image numbers of outputs ``out`` for inputs ``a`` against targets ``b`` (all in the model's scale)."""
    from vislab.data.translate.degrade import upscale
    from vislab.metrics import image_quality as Q

    img_o, img_b = to01(as_image(out, a, make)), to01(as_image(b, a, make))
    m = {"psnr": Q.psnr(img_o, img_b), "ssim": Q.ssim(img_o, img_b), "l1": per_sample((img_o - img_b).abs())}
    if make == "sr":
        base = upscale(to01(a), scale)
        m.update(psnr_y=Q.psnr(img_o, img_b, y_channel=True, crop_border=scale), ssim_y=Q.ssim(img_o, img_b, y_channel=True, crop_border=scale),
                 base_psnr=Q.psnr(base, img_b), base_psnr_y=Q.psnr(base, img_b, y_channel=True, crop_border=scale),
                 base_ssim_y=Q.ssim(base, img_b, y_channel=True, crop_border=scale))
    elif make == "denoise":
        m.update(base_psnr=Q.psnr(to01(a), img_b), base_ssim=Q.ssim(to01(a), img_b))
    elif make == "none" and a.shape[1] == b.shape[1] and a.shape[-2:] == b.shape[-2:]:  # the input as the output
        m.update(base_l1=per_sample((to01(a) - img_b).abs()), base_psnr=Q.psnr(to01(a), img_b))
    elif make == "colorize":
        lab_o = torch.cat([(a.float() + 1) * 50, out.float().clamp(-1, 1) * 110], 1)
        lab_b = torch.cat([(a.float() + 1) * 50, b.float() * 110], 1)
        m.update(ab_error=Q.ab_error(lab_o, lab_b), colorfulness=Q.colorfulness(img_o), colorfulness_target=Q.colorfulness(img_b))
        if mean_ab is not None:
            flat = lab_b.clone()
            flat[:, 1], flat[:, 2] = mean_ab
            m["base_ab_error"] = Q.ab_error(flat, lab_b)
    return m


def mean_ab(images: list[torch.Tensor], device: torch.device) -> tuple[float, float]:
    """The training images' mean a*, b*: colorization's constant-colour baseline."""
    s, n = torch.zeros(2, dtype=torch.float64), 0
    for x in images:
        lab = lab_pair(x[None].to(device).float() / 255)[1] * 110
        s += lab.double().sum((0, 2, 3)).cpu()
        n += lab.shape[-1] * lab.shape[-2]
    return tuple((s / max(n, 1)).tolist())


# --------------------------------------------------------------------------------------------
# Hooks
# --------------------------------------------------------------------------------------------
class PairTask:
    """A generator from input to target, with an optional critic (see the module docstring)."""

    ema_models = ("G",)
    stat_owners = {"loss_d": "the critic D", "loss_g": "the generator G", "pixel": "the generator G", "adv": "the generator G",
                   "perceptual": "the generator G"}

    def __init__(self, make: str, scale: int, pixel: str, pixel_weight: float, adv_weight: float, gan: str, conditional_d: bool,
                 perceptual: Perceptual | None = None, perceptual_weight: float = 0.0, base_ab: tuple[float, float] | None = None):
        self.make, self.scale, self.pixel, self.pixel_weight = make, scale, pixel, pixel_weight
        self.adv_weight, self.gan, self.conditional_d = adv_weight, gan, conditional_d
        self.perceptual, self.perceptual_weight, self.base_ab = perceptual, perceptual_weight, base_ab
        self.monitor = {"sr": "val_psnr_y", "denoise": "val_psnr", "colorize": "val_ab_error"}.get(make, "val_l1")
        self.shown = {"sr": ("val_psnr_y", "val_base_psnr_y", "val_ssim_y"), "denoise": ("val_psnr", "val_base_psnr", "val_ssim"),
                      "colorize": ("val_ab_error", "val_base_ab_error", "val_colorfulness")}.get(make, ("val_l1", "val_psnr", "val_ssim"))

    def optimizers(self) -> dict[str, OptimizerSpec]:
        specs = {"G": OptimizerSpec(("G",))}
        if self.adv_weight > 0:
            specs["D"] = OptimizerSpec(("D",))
        return specs

    def _d_input(self, a: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([a, x], 1) if self.conditional_d else x

    def step(self, ctx: StepContext, batch: TBatch) -> dict[str, torch.Tensor]:
        a, b = batch.a, batch.b
        out = ctx.module("G")(a)
        stats: dict[str, torch.Tensor] = {}
        if self.adv_weight > 0:
            D = ctx.module("D")
            loss_d = critic_loss(D(self._d_input(a, b)), D(self._d_input(a, out.detach())), self.gan)
            ctx.backward(loss_d.sum(), "D")
            ctx.step("D")
            stats["loss_d"] = loss_d.sum().detach()
        pix = pixel_loss(out, b, self.pixel)
        loss = self.pixel_weight * pix
        stats["pixel"] = pix.sum().detach()
        if self.perceptual is not None and self.perceptual_weight > 0:
            per = self.perceptual(out, b)
            loss = loss + self.perceptual_weight * per
            stats["perceptual"] = per.sum().detach()
        if self.adv_weight > 0:
            adv = generator_adv(ctx.raw("D")(self._d_input(a, out)), self.gan)  # D only judges: no gradients for it
            loss = loss + self.adv_weight * adv
            stats["adv"] = adv.sum().detach()
        ctx.backward(loss.sum(), "G")
        ctx.step("G")
        stats["loss_g"] = loss.sum().detach()
        return stats

    def new_metrics(self) -> ImageQuality:
        return ImageQuality()

    def eval_step(self, models: Any, batch: TBatch, metrics: ImageQuality) -> None:
        if len(batch) == 0:
            return
        out = models["G"](batch.a)
        metrics.update(pair_metrics(batch.a, out, batch.b, self.make, self.scale, self.base_ab))


class ImagePool:
    """The last ``size`` generated images; each new one is returned, or swapped for a stored one half the time
    (Shrivastava et al. 2017, as CycleGAN uses it). Decisions come from a generator seeded per batch."""

    def __init__(self, size: int):
        self.size, self.images = size, []

    def reset(self) -> None:
        self.images = []

    def query(self, x: torch.Tensor, g: torch.Generator) -> torch.Tensor:
        if self.size == 0:
            return x
        out = []
        for img in x.detach():
            if len(self.images) < self.size:
                self.images.append(img)
                out.append(img)
            elif float(torch.rand(1, generator=g)) < 0.5:
                j = int(torch.randint(0, self.size, (1,), generator=g))
                out.append(self.images[j])
                self.images[j] = img
            else:
                out.append(img)
        return torch.stack(out)


class CycleTask:
    """CycleGAN's losses and updates (see the module docstring)."""

    ema_models = ("G_AB", "G_BA")
    monitor = LAST
    shown = ("val_cycle_a", "val_cycle_b")
    stat_owners = {"loss_d": "the critics D_A, D_B", "loss_g": "the generators G_AB, G_BA", "cycle": "the generators G_AB, G_BA",
                   "identity": "the generators G_AB, G_BA", "adv": "the generators G_AB, G_BA"}

    def __init__(self, gan: str, cycle_weight: float, identity_weight: float, pool_size: int, seed: int):
        self.gan, self.cycle_weight, self.identity_weight, self.seed = gan, cycle_weight, identity_weight, seed
        self.pool_a, self.pool_b = ImagePool(pool_size), ImagePool(pool_size)
        self.epoch = -1

    def optimizers(self) -> dict[str, OptimizerSpec]:
        return {"G": OptimizerSpec(("G_AB", "G_BA")), "D": OptimizerSpec(("D_A", "D_B"))}

    def step(self, ctx: StepContext, batch: TBatch) -> dict[str, torch.Tensor]:
        from vislab.core.dist import env_info
        from vislab.data.base import epoch_generator

        if ctx.epoch != self.epoch:  # a new epoch starts with empty pools (a resumed run then repeats it exactly)
            self.epoch = ctx.epoch
            self.pool_a.reset()
            self.pool_b.reset()
        a, b = batch.a, batch.b
        n = len(a)
        idt = self.identity_weight > 0
        ab = ctx.module("G_AB")(torch.cat([a, b]) if idt else a)  # G_AB(a) and, for the identity loss, G_AB(b)
        ba = ctx.module("G_BA")(torch.cat([b, a]) if idt else b)
        fake_b, fake_a = ab[:n], ba[:n]
        rec_a, rec_b = ctx.raw("G_BA")(fake_b), ctx.raw("G_AB")(fake_a)  # second uses: their gradients add up at the weights
        adv = generator_adv(ctx.raw("D_B")(fake_b), self.gan) + generator_adv(ctx.raw("D_A")(fake_a), self.gan)
        cyc = pixel_loss(rec_a, a, "l1") + pixel_loss(rec_b, b, "l1")
        loss = adv + self.cycle_weight * cyc
        stats = {"adv": adv.sum().detach(), "cycle": cyc.sum().detach()}
        if idt:
            ident = pixel_loss(ab[n:], b, "l1") + pixel_loss(ba[n:], a, "l1")
            loss = loss + self.cycle_weight * self.identity_weight * ident
            stats["identity"] = ident.sum().detach()
        ctx.backward(loss.sum(), "G")
        ctx.step("G")
        d = env_info()
        g = epoch_generator(self.seed, ctx.epoch, salt=300_007 + ctx.batch_index * max(1, d.world) + d.rank)
        pa, pb = self.pool_a.query(fake_a, g), self.pool_b.query(fake_b, g)
        loss_d = critic_loss(ctx.module("D_A")(a), ctx.module("D_A")(pa), self.gan) + critic_loss(ctx.module("D_B")(b), ctx.module("D_B")(pb), self.gan)
        ctx.backward(loss_d.sum(), "D")
        ctx.step("D")
        stats["loss_d"] = loss_d.sum().detach()
        stats["loss_g"] = loss.sum().detach()
        return stats

    def new_metrics(self) -> ImageQuality:
        return ImageQuality()

    def eval_step(self, models: Any, batch: TBatch, metrics: ImageQuality) -> None:
        from vislab.metrics.image_quality import cycle_error

        if len(batch) == 0:
            return
        a, b = batch.a, batch.b
        fb, fa = models["G_AB"](a), models["G_BA"](b)
        metrics.update({"cycle_a": cycle_error(to01(a), to01(models["G_BA"](fb))), "cycle_b": cycle_error(to01(b), to01(models["G_AB"](fa))),
                        "change_a": per_sample((to01(fb) - to01(a)).abs()), "change_b": per_sample((to01(fa) - to01(b)).abs())})


# --------------------------------------------------------------------------------------------
# Building
# --------------------------------------------------------------------------------------------
def resolved(m: TranslateModelConfig) -> dict[str, Any]:
    """The settings ``--model``'s preset fills in where the config says auto / -1 / 0."""
    p: Preset = PRESETS[m.model]
    adv = p.adv if m.adv_weight < 0 else m.adv_weight
    return {"pairing": p.pairing, "make": p.make, "g": p.g, "d": p.d if adv > 0 else "", "adv": adv if p.d else 0.0,
            "pixel": p.pixel if m.pixel_loss == "auto" else m.pixel_loss, "pixel_weight": p.pixel_weight if m.pixel_weight < 0 else m.pixel_weight,
            "gan": p.gan if m.gan_loss == "auto" else m.gan_loss, "perceptual": p.perceptual if m.perceptual_weight < 0 else m.perceptual_weight,
            "norm": m.norm if m.norm != "auto" else ("instance" if p.pairing == "unpaired" else "batch"), "width": m.width or 64}


def nets(m: TranslateModelConfig, ca: int, cb: int, crop: int) -> dict[str, list]:
    """``{name: [registered model, args]}`` of the run's networks, for ``ca``-channel inputs and ``cb``-channel targets."""
    r = resolved(m)
    w, norm, g = r["width"], r["norm"], r["g"]
    out: dict[str, list] = {}
    if r["pairing"] == "unpaired":
        gen = {"width": w, "n_blocks": m.blocks or 9, "norm": norm}
        out["G_AB"] = ["resnet_gen", {"in_chans": ca, "out_chans": cb, **gen}]
        out["G_BA"] = ["resnet_gen", {"in_chans": cb, "out_chans": ca, **gen}]
        out["D_A"] = ["patchgan", {"in_chans": ca, "width": w, "n_layers": m.d_layers, "norm": norm}]
        out["D_B"] = ["patchgan", {"in_chans": cb, "width": w, "n_layers": m.d_layers, "norm": norm}]
        return out
    if g == "pix2pix_unet":
        out["G"] = [g, {"in_chans": ca, "out_chans": cb, "img_size": crop, "width": w, "depth": m.blocks, "norm": norm}]
    elif g == "srcnn":
        out["G"] = [g, {"in_chans": ca, "scale": m.scale}]
    elif g in ("srresnet", "edsr"):
        out["G"] = [g, {"in_chans": ca, "scale": m.scale, "width": w, "n_blocks": m.blocks or 16, "global_skip": m.global_skip,
                        **({"norm": norm} if g == "srresnet" else {})}]
    else:  # dncnn
        out["G"] = [g, {"in_chans": ca, "depth": m.blocks or 17, "width": w, "norm": norm}]
    if r["d"]:
        cond = r["make"] != "sr"
        out["D"] = ["patchgan", {"in_chans": (ca + cb) if cond else cb, "width": w, "n_layers": m.d_layers, "norm": norm}]
    return out


def validate(cfg: TranslateConfig) -> None:
    """Translation's own checks (the shared ranges: :func:`vislab.tasks.base.validate_train`)."""
    m, d = cfg.model, cfg.data
    r = resolved(m)
    check_all([(m.width >= 0, "--width", ">= 1 (0: 64)", m.width), (m.blocks >= 0, "--blocks", ">= 1 (0: the model's)", m.blocks),
               (0 <= m.d_layers <= 6, "--d-layers", "in [0, 6]", m.d_layers), (m.noise_level >= 0, "--noise-level", ">= 0", m.noise_level),
               (m.cycle_weight >= 0, "--cycle-weight", ">= 0", m.cycle_weight), (m.identity_weight >= 0, "--identity-weight", ">= 0", m.identity_weight),
               (m.pool_size >= 0, "--pool-size", ">= 0", m.pool_size), (m.sample_every >= -1, "--sample-every", ">= 1, 0 (20 over the run) or -1", m.sample_every),
               (d.img_size >= 0, "--img-size", ">= 8 (0: the default)", d.img_size), (d.patches >= 0, "--patches", ">= 1 (0: auto)", d.patches),
               (d.eval_size >= 0, "--eval-size", ">= 8 (0: auto)", d.eval_size), (d.load_size >= -1, "--load-size", ">= 1, 0 (auto) or -1 (own size)", d.load_size)])
    crop = d.img_size or (256 if r["pairing"] != "single" and d.data not in ("edges2shapes", "warm2cool") else 64)
    if r["make"] == "sr" and crop % m.scale:
        raise ConfigError(f"--scale {m.scale}: expected a scale that divides the crop size --img-size {crop} (the high-resolution target), "
                          f"got a remainder of {crop % m.scale}; try --img-size {crop - crop % m.scale} or {crop + m.scale - crop % m.scale}")
    if m.noise == "jpeg" and m.noise_level > 100:
        raise ConfigError(f"--noise-level: expected a JPEG quality in [1, 100] (0: random), got {m.noise_level:g}")
    if r["make"] != "denoise" and (m.noise != "gaussian"):
        raise ConfigError(f"--noise {m.noise}: expected --model dncnn for denoising noise, got --model {m.model}")
    if r["make"] != "sr" and m.degrade != "bicubic":
        raise ConfigError(f"--degrade {m.degrade}: expected a super-resolution model (srcnn, srresnet, edsr, srgan), got --model {m.model}")
    if r["d"] and cfg.train.accumulate != 1:
        raise ConfigError(f"--accumulate: expected 1 with a critic (the updates alternate batch by batch), got {cfg.train.accumulate}")
    if r["pairing"] != "unpaired" and d.data_b:
        raise ConfigError(f"--data-b: expected --model cyclegan (unpaired domains), got --model {m.model}")


def crop_size(cfg: TranslateConfig, data: TranslateData) -> int:
    """The training crop: ``--img-size``, else 256 for paired / unpaired folders, the generated images' own size, 64 for single images."""
    if cfg.data.img_size:
        return cfg.data.img_size
    if data.pairing != "single":
        return min(256, data.train_a.min_side())
    return 64


def eval_size(cfg: TranslateConfig, data: TranslateData, crop: int, multiple: int) -> int:
    """The validation crop: ``--eval-size``, else the largest that fits every validation image (at most 256), a multiple of ``multiple``."""
    side = data.val_a.min_side() if data.val_a is not None else crop
    e = cfg.data.eval_size or min(256, max(side, crop))
    return max(multiple, e - e % multiple)


def setup(cfg: TranslateConfig, ctx: WorkerContext) -> TranslateJob:
    """Data, models, streams and hooks of a translation run in this process."""
    tc, dist, m = cfg.train, ctx.dist, cfg.model
    r = resolved(m)
    data = load_translate_data(cfg.data, r["pairing"], want_channels=3 if r["make"] == "colorize" else 0)
    crop = crop_size(cfg, data)
    if r["make"] == "sr" and crop % m.scale:
        raise ConfigError(f"--scale {m.scale}: expected a scale that divides the crop size {crop}, got a remainder of {crop % m.scale}")
    c = data.train_a.channels
    ca, cb = {"colorize": (1, 2)}.get(r["make"], (c, data.train_b.channels if data.train_b is not None else c))
    multiple = {"pix2pix_unet": _unet_multiple(crop, m.blocks), "resnet_gen": 4, "srcnn": m.scale, "srresnet": m.scale, "edsr": m.scale}.get(r["g"], 1)
    if crop % multiple:
        raise ConfigError(f"--img-size {crop}: expected a multiple of {multiple} for --model {m.model} (its stride-2 levels)")
    torch.manual_seed(tc.seed)
    spec = nets(m, ca, cb, crop)
    model, args = build_registered("translator", TASK, {"nets": spec})
    models = dict(model)
    maker = Maker(r["make"], m.degrade if r["make"] == "sr" else m.noise, m.scale, m.noise_level) if r["make"] != "none" else None
    flip = cfg.data.augment == "flip" or (cfg.data.augment == "auto" and data.name != "digits")
    patches = cfg.data.patches or (1 if data.resized else max(1, round(sum(x.shape[-1] * x.shape[-2] for x in data.train_a.images) / len(data.train_a) / crop**2)))
    common = {"make": maker, "unpaired": r["pairing"] == "unpaired", "seed": tc.seed, "rank": dist.rank, "world": dist.world, "device": ctx.device,
              "channels_last": ctx.precision.channels_last}
    train = PairStream(data.train_a, data.train_b, crop=crop, batch_size=cfg.data.batch_size, train=True, patches=patches, flip=flip, **common)
    ev = eval_size(cfg, data, crop, multiple)
    val = PairStream(data.val_a, data.val_b, crop=crop, batch_size=cfg.data.eval_batch(), train=False, eval_size=ev, **common) if data.val_a is not None else None
    if r["pairing"] == "unpaired" and data.val_b is None:
        val = None
    base_ab = mean_ab(data.train_a.images, ctx.device) if r["make"] == "colorize" else None
    perceptual = Perceptual(m.features, ctx.device) if r["perceptual"] > 0 else None
    if r["pairing"] == "unpaired":
        hooks: Any = CycleTask(r["gan"], m.cycle_weight, m.identity_weight, m.pool_size, tc.seed)
    else:
        hooks = PairTask(r["make"], m.scale, r["pixel"], r["pixel_weight"], r["adv"], r["gan"], r["make"] != "sr", perceptual, r["perceptual"], base_ab)
    ckpt_state = {"task": TASK, "model": "translator", "model_args": args, "preset": m.model, "pairing": r["pairing"], "make": r["make"],
                  "scale": m.scale if r["make"] == "sr" else 1, "degrade": m.degrade, "noise": m.noise, "noise_level": m.noise_level,
                  "in_chans": ca, "out_chans": cb, "channels": c, "img_size": [crop, crop], "eval_size": ev, "multiple": multiple,
                  "mean_ab": list(base_ab) if base_ab else None, "dataset": data.name, "config": C.to_dict(cfg)}
    n_par = {k: sum(p.numel() for p in v.parameters()) for k, v in models.items()}
    what = {"unpaired": f"{r['gan']} + {m.cycle_weight:g} x cycle + {m.cycle_weight * m.identity_weight:g} x identity",
            }.get(r["pairing"], f"{r['pixel_weight']:g} x {r['pixel']}" + (f" + {r['adv']:g} x {r['gan']}" if r["adv"] else "")
                  + (f" + {r['perceptual']:g} x perceptual[{perceptual.name}]" if perceptual else ""))
    made = {"sr": f"x{m.scale} {m.degrade} inputs", "denoise": f"{m.noise} noise {m.noise_level:g}" + (" (blind)" if m.noise_level == 0 else ""),
            "colorize": "L -> ab", "none": f"{r['pairing']} {cfg.data.direction}"}[r["make"]]
    log = [f"vislab translate: {m.model} ({', '.join(f'{k} {v:,}' for k, v in n_par.items())} parameters; {what}) on {data.name} ({made}; "
           f"{len(data.train_a)} train, {len(data.val_a) if data.val_a is not None else 0} val images, {crop} px crops x {patches}/image, "
           f"eval {ev} px) | {ctx.device} {ctx.precision.name} | {dist.world} process(es) -> {ctx.run_dir}"]
    if perceptual is not None and perceptual.note:
        log.append(perceptual.note)
    job = TranslateJob(hooks, models, train, val, ckpt_state, log, cfg=cfg, ctx=ctx, data=data, resume_keys=("task", "model", "model_args"))
    if dist.is_main:
        job.snapshot_every = m.sample_every if m.sample_every else max(1, len(train) * tc.epochs // 20)
        job.callbacks.append(Callback(on_step_end=job.on_step))
    return job


def _unet_multiple(crop: int, depth: int) -> int:
    if depth:
        return 2**depth
    n, s = 0, crop
    while s % 2 == 0 and s > 1 and n < 8:
        n, s = n + 1, s // 2
    return 2**n


# --------------------------------------------------------------------------------------------
# Pictures
# --------------------------------------------------------------------------------------------
def _rgb(x: torch.Tensor) -> torch.Tensor:
    return x.repeat(1, 3, 1, 1) if x.shape[1] == 1 else x


def triplets(models: Any, state: dict[str, Any], batch: TBatch, n: int = 8) -> tuple[torch.Tensor, int, str]:
    """Rows to look at (images in [-1, 1], one size): input / output / target per example (CycleGAN: A, G_AB(A),
    G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B))); returns ``(images, images per row, caption)``."""
    a, b = batch.a[:n], batch.b[:n]
    make = state["make"]
    if state["pairing"] == "unpaired":
        fb, fa = models["G_AB"](a), models["G_BA"](b)
        cols = [a, fb, models["G_BA"](fb), b, fa, models["G_AB"](fa)]
        return _interleave([_rgb(c.float().clamp(-1, 1)) for c in cols]), 6, "A, G_AB(A), G_BA(G_AB(A)), B, G_BA(B), G_AB(G_BA(B))"
    out = models["G"](a)
    if make == "colorize":
        cols = [_rgb(a.float()), as_image(out, a, make), as_image(b, a, make)]
        return _interleave(cols), 3, "L input, colorized, original"
    inp = a.float()
    if make == "sr":
        inp = F.interpolate(inp, scale_factor=state["scale"], mode="nearest")
    cols = [_rgb(inp.clamp(-1, 1)), _rgb(out.float().clamp(-1, 1)), _rgb(b.float())]
    what = {"sr": "low resolution (nearest), super-resolved, original", "denoise": "noisy, denoised, clean"}.get(make, "input, output, target")
    return _interleave(cols), 3, what


def _interleave(cols: list[torch.Tensor]) -> torch.Tensor:
    return torch.stack(cols, 1).flatten(0, 1)


@dataclass(kw_only=True)
class TranslateJob(TrainJob):
    """A translation run: input / output / target snapshots and per-step losses during training; pictures after."""

    data: Any = None
    models: Any = None
    snapshot_every: int = 0
    dynamics: list[dict[str, float]] = field(default_factory=list)
    fixed: TBatch | None = None

    def configure(self, trainer: Trainer, model: Any) -> None:
        self.models = model
        path, last = self.ctx.run_dir / "dynamics.csv", self.ctx.run_dir / "checkpoints" / "last.json"
        if path.is_file() and last.is_file():  # a resumed run: the steps up to its checkpoint
            step = json.loads(last.read_text()).get("step", 0)
            self.dynamics = [d for d in read_metrics_csv(path) if d["step"] <= step]
        stream = self.val if self.val is not None else self.train
        self.fixed = next(iter(stream.epoch(0)))

    def on_step(self, step: int, means: dict[str, float]) -> None:
        self.dynamics.append({"step": step, **{k[len("train_"):]: v for k, v in means.items()}})
        if step % len(self.train) == 0:  # the epoch's last step: written before its checkpoint
            write_metrics_csv(self.ctx.run_dir / "dynamics.csv", self.dynamics)
        if self.snapshot_every > 0 and step % self.snapshot_every == 0:
            self.snapshot(step)

    def pictures(self, models: Any, n: int) -> tuple[torch.Tensor, int, str]:
        """``(images, per_row, caption)``: input / output / target of ``n`` of the fixed validation images."""
        return triplets({k: unwrap(v) for k, v in models.items()}, self.ckpt_state, self.fixed, n)

    def snapshot(self, step: int) -> None:
        from vislab.tasks.generate.report import save_grid

        with torch.no_grad(), eval_mode(self.models):
            imgs, per_row, _ = self.pictures(self.models, 4)
        dest = self.ctx.run_dir / "snapshots" / f"step_{step:06d}.png"
        dest.parent.mkdir(exist_ok=True)
        save_grid(imgs, dest, nrow=per_row, label=f"step {step}")

    def finish(self, trainer: Trainer, model: Any, result: FitResult) -> dict[str, Any]:
        self.test_best(trainer, model, None)
        if self.val is None:
            return {}
        from vislab.engine.evaluate import run_eval

        final = run_eval(self.hooks, self.best, self.val, self.ctx.precision).compute()
        trainer.progress.log("best checkpoint on val: " + "  ".join(f"{k} {v:.4f}" for k, v in final.items()))
        return {f"final_val_{k}": v for k, v in final.items()}

    def report(self, trainer: Trainer, model: Any, result: FitResult, final: dict[str, Any]) -> None:
        from vislab.tasks.translate.report import write_training_report

        with torch.no_grad(), eval_mode(self.best):
            imgs, per_row, caption = self.pictures(self.best, 8)
        write_training_report(self.ctx.run_dir, result, final, imgs, per_row, caption, self.dynamics)

