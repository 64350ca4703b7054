"""Image synthesis's commands: ``sample``, ``interpolate``, ``reconstruct``, ``denoise``, ``eval`` and ``export``.

Each loads a ``generate`` checkpoint (another task's is refused in one line), works in batches with a progress bar,
and writes its pictures and numbers into a folder of the run (or ``--out``).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import torch
from torch import nn

from vislab.core import config as C
from vislab.core.errors import ConfigError, DataError
from vislab.core.io import atomic_write_text, csv_cell
from vislab.core.progress import Tracker
from vislab.data.generate import GenDataConfig, GenStream, load_gen_data, scale
from vislab.tasks.generate.config import DenoiseConfig, GenModelConfig, GenEvalConfig, GenExportConfig, InterpolateConfig, ReconstructConfig, SampleConfig
from vislab.tasks.generate.report import grid_array, save_gif, save_grid, save_images
from vislab.tasks.generate.task import TASK, AETask, corrupt, psnr_ssim

AUTOENCODERS = ("ae", "vae")


# --------------------------------------------------------------------------------------------
# Loading and drawing
# --------------------------------------------------------------------------------------------
def load(checkpoint: str, device: str = "auto") -> tuple[Any, dict[str, Any], torch.device]:
    """A generate checkpoint's model(s) on ``device`` (fp32, eval mode): a dict ``{"G", "D"}`` for GANs."""
    from vislab.tasks.shared.model import load_for_inference

    model, state, dev, _ = load_for_inference(checkpoint, TASK, device, "fp32")
    model = model.float().eval()
    return (dict(model) if isinstance(model, nn.ModuleDict) else model), state, dev


def run_folder(state: dict[str, Any]) -> Path:
    return Path(state["path"]).parent.parent


def labels_for(state: dict[str, Any], n: int, cls: int, flag: str = "--class") -> torch.Tensor | None:
    """The classes to draw: None (unconditional), ``cls`` for all, or every class in turn (``cls`` = -1).

    Raises:
        ConfigError: a class for an unconditional model, or one out of range.
    """
    k = state["num_classes"] if state["conditional"] else 0
    if not k:
        if cls >= 0:
            conditional = {"vae": "cvae", "dcgan": "cgan", "ddpm": "cddpm"}.get(state["preset"])
            hint = f" (train --model {conditional} on class folders for a conditional one)" if conditional else ""
            raise ConfigError(f"{flag} {cls}: expected no class for an unconditional model, got one for a {state['preset']} run{hint}")
        return None
    if cls >= k:
        names = ", ".join(f"{i}={c}" for i, c in enumerate(state["classes"][:12]))
        raise ConfigError(f"{flag}: expected a class in 0..{k - 1} ({names}{', ...' if k > 12 else ''}), got {cls}")
    return torch.full((n,), cls, dtype=torch.long) if cls >= 0 else torch.arange(n) % k


def latent_gaussian(state: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and covariance factor of an autoencoder's training codes (``latents.safetensors``, written after training)."""
    from safetensors.torch import load_file

    p = run_folder(state) / "latents.safetensors"
    if not p.is_file():
        raise DataError(f"sample: expected the training codes of this autoencoder at '{p}' (written when training ends), got none")
    t = load_file(str(p))
    return t["mean"], t["chol"]


def draw_latents(state: dict[str, Any], n: int, g: torch.Generator) -> torch.Tensor:
    """Latent codes: N(0, I) for GANs and VAEs, the training codes' Gaussian for a plain autoencoder."""
    z = torch.randn(n, state["z_dim"], generator=g)
    if state["kind"] == "ae":
        mean, chol = latent_gaussian(state)
        z = mean + z @ chol.T
    return z


def decode(model: Any, state: dict[str, Any], z: torch.Tensor, y: torch.Tensor | None, dev: torch.device, **diffusion: Any) -> torch.Tensor:
    """Images in [-1, 1] from latents ``z``: a GAN's generator, an autoencoder's decoder, or (diffusion) the
    deterministic-or-not chain that starts at noise ``z`` ``(n, C, H, W)``."""
    z, y = z.to(dev), (y.to(dev) if y is not None else None)
    with torch.no_grad():
        if state["kind"] == "gan":
            return model["G"](z, y).float()
        if state["kind"] in AUTOENCODERS:
            return model.decode(z, y).float()
        guidance = diffusion.pop("guidance", 0.0) or state["guidance"]
        return model.sample(len(z), noise=z, y=y, guidance=guidance if y is not None else 1.0, **diffusion)


def _diffusion_args(cfg: Any) -> dict[str, Any]:
    return {"steps": cfg.steps or None, "sampler": cfg.sampler, "guidance": cfg.guidance, **({"eta": cfg.eta} if hasattr(cfg, "eta") else {})}


def generate_images(model: Any, state: dict[str, Any], n: int, y: torch.Tensor | None, seed: int, dev: torch.device, batch: int,
                    progress: Tracker | None = None, **diffusion: Any) -> torch.Tensor:
    """``n`` new images (CPU, [-1, 1]) in batches, from the seeded generator."""
    g = torch.Generator().manual_seed(seed)
    c, s = state["channels"], state["img_size"][0]
    out = []
    for idx in torch.arange(n).split(batch):
        yy = y[idx] if y is not None else None
        if state["kind"] == "diffusion":
            z = torch.randn(len(idx), c, s, s, generator=g)
            dg = torch.Generator().manual_seed(seed * 1_000_003 + int(idx[0]))  # the chain's own noise, per batch
            out.append(decode(model, state, z, yy, dev, generator=dg, **diffusion).cpu())
        else:
            out.append(decode(model, state, draw_latents(state, len(idx), g), yy, dev).cpu())
        if progress is not None:
            progress.advance(len(idx))
    return torch.cat(out)


# --------------------------------------------------------------------------------------------
# sample
# --------------------------------------------------------------------------------------------
def sample(cfg: SampleConfig) -> dict[str, Any]:
    """``cfg.n`` new images: ``grid.png``, one PNG per image under ``images/``, and (diffusion, ``--frames``) a GIF of the chain."""
    if cfg.n < 1:
        raise ConfigError(f"--n: expected >= 1, got {cfg.n}")
    if cfg.steps < 0 or cfg.frames < 0:
        raise ConfigError(f"--steps / --frames: expected >= 0, got {cfg.steps} / {cfg.frames}")
    model, state, dev = load(cfg.checkpoint, cfg.device)
    y = labels_for(state, cfg.n, cfg.class_)
    out = Path(cfg.out) if cfg.out else run_folder(state) / "samples"
    out.mkdir(parents=True, exist_ok=True)
    diffusion = _diffusion_args(cfg) if state["kind"] == "diffusion" else {}
    with Tracker("sample", cfg.n) as progress:
        imgs = generate_images(model, state, cfg.n, y, cfg.seed, dev, cfg.batch_size, progress, **diffusion)
    nrow = min(cfg.n, state["num_classes"] if y is not None and cfg.class_ < 0 and state["num_classes"] <= 16 else 8)
    what = f"class {cfg.class_} ({state['classes'][cfg.class_]})" if cfg.class_ >= 0 else ("a class per column" if y is not None else "")
    grid = save_grid(imgs, out / "grid.png", nrow=nrow, label=f"{state['preset']} samples, seed {cfg.seed}" + (f", {what}" if what else ""))
    files = save_images(imgs, out / "images")
    result: dict[str, Any] = {"out": str(out), "grid": str(grid), "n": cfg.n, "images": str(out / "images")}
    if cfg.frames and state["kind"] == "diffusion":
        k = min(cfg.n, 16)
        z = torch.randn(k, state["channels"], *state["img_size"], generator=torch.Generator().manual_seed(cfg.seed))
        _, frames = decode(model, state, z, y[:k] if y is not None else None, dev, frames=cfg.frames,
                           generator=torch.Generator().manual_seed(cfg.seed * 1_000_003), **diffusion)
        steps = len(frames)
        gif = save_gif([grid_array(f, nrow=min(k, 8)) for f in frames], out / "denoising.gif",
                       [f"denoising {i + 1}/{steps}" for i in range(steps)], ms=120)
        result["gif"] = str(gif)
    result["files"] = len(files)
    return result


# --------------------------------------------------------------------------------------------
# interpolate
# --------------------------------------------------------------------------------------------
def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Points ``(1 - t) a + t b`` for each ``t``: ``(len(t), *a.shape)``."""
    t = t.view(-1, *([1] * a.ndim))
    return (1 - t) * a + t * b


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation (Shoemake 1985; White 2016 for GAN latents): along the great circle between ``a`` and
    ``b``, which keeps samples at the norm typical of Gaussian noise; straight lines when they are (anti)parallel."""
    fa, fb = a.flatten().double(), b.flatten().double()
    cos = (fa @ fb / (fa.norm() * fb.norm()).clamp_min(1e-12)).clamp(-1, 1)
    omega = torch.arccos(cos)
    if float(omega.sin().abs()) < 1e-6:
        return lerp(a, b, t)
    t = t.double().view(-1, *([1] * a.ndim))
    out = (torch.sin((1 - t) * omega) * a.double() + torch.sin(t * omega) * b.double()) / torch.sin(omega)
    return out.to(a.dtype)


def interpolate(cfg: InterpolateConfig) -> dict[str, Any]:
    """Walks between ``--pairs`` pairs of latent points: ``interpolation.png`` (a walk per row) and ``interpolation.gif``."""
    if cfg.steps < 2 or cfg.pairs < 1:
        raise ConfigError(f"--steps / --pairs: expected >= 2 / >= 1, got {cfg.steps} / {cfg.pairs}")
    model, state, dev = load(cfg.checkpoint, cfg.device)
    kind = state["kind"]
    source = cfg.source if cfg.source != "auto" else ("images" if kind in AUTOENCODERS else "noise")
    if source == "images" and kind not in AUTOENCODERS:
        raise ConfigError(f"--source images: expected an autoencoder run (it encodes images to codes), got a {state['preset']} run; use --source noise")
    method = cfg.method if cfg.method != "auto" else ("slerp" if source == "noise" else "lerp")
    g = torch.Generator().manual_seed(cfg.seed)
    y_rows = labels_for(state, cfg.pairs, cfg.class_)
    ends_img = None
    if source == "images":
        src = _default_split(state)
        pick = torch.randperm(len(src), generator=g)[: 2 * cfg.pairs]
        if len(pick) < 2 * cfg.pairs:
            raise DataError(f"interpolate: expected {2 * cfg.pairs} validation images for {cfg.pairs} pairs, got {len(pick)}")
        ends_img = scale(torch.stack([src.get(int(i)) for i in pick]))
        if state["conditional"] and cfg.class_ < 0:
            y_rows = src.labels[pick[0::2]]  # a walk decodes in its first image's class
        yy = (src.labels[pick] if cfg.class_ < 0 else y_rows.repeat_interleave(2)) if y_rows is not None else None  # each image its own
        with torch.no_grad():
            codes = model.encode(ends_img.to(dev), yy.to(dev) if yy is not None else None)[0].float().cpu()
        a, b = codes[0::2], codes[1::2]
    else:
        shape = (state["channels"], *state["img_size"]) if kind == "diffusion" else (state["z_dim"],)
        if kind == "ae":
            z = draw_latents(state, 2 * cfg.pairs, g)
        else:
            z = torch.randn(2 * cfg.pairs, *shape, generator=g)
        a, b = z[0::2], z[1::2]
    t = torch.linspace(0, 1, cfg.steps)
    path = torch.stack([(slerp if method == "slerp" else lerp)(a[i], b[i], t) for i in range(cfg.pairs)])  # (pairs, steps, ...)
    flat = path.flatten(0, 1)
    y_all = y_rows.repeat_interleave(cfg.steps) if y_rows is not None else None
    diffusion = {"steps": min(50, model.timesteps), "sampler": "ddim", "eta": 0.0} if kind == "diffusion" else {}  # deterministic
    frames = []
    with Tracker("interpolate", len(flat)) as progress:
        for idx in torch.arange(len(flat)).split(128):
            frames.append(decode(model, state, flat[idx], y_all[idx] if y_all is not None else None, dev, **diffusion).cpu())
            progress.advance(len(idx))
    frames_t = torch.cat(frames).view(cfg.pairs, cfg.steps, *frames[0].shape[1:])
    out = Path(cfg.out) if cfg.out else run_folder(state) / "interpolate"
    out.mkdir(parents=True, exist_ok=True)
    png = save_grid(frames_t.flatten(0, 1), out / "interpolation.png", nrow=cfg.steps, label=f"{method} between {source} end points, a walk per row")
    order = list(range(cfg.steps)) + list(range(cfg.steps - 2, 0, -1))  # there and back
    gif = save_gif([grid_array(frames_t[:, j], nrow=min(cfg.pairs, 8)) for j in order], out / "interpolation.gif",
                   [f"t = {float(t[j]):.2f}" for j in order], ms=120)
    step_dist = (frames_t[:, 1:] - frames_t[:, :-1]).flatten(2).norm(dim=2)  # (pairs, steps - 1)
    return {"out": str(out), "png": str(png), "gif": str(gif), "method": method, "source": source, "frames": frames_t,
            "end_images": ends_img, "max_step": float(step_dist.max()), "mean_step": float(step_dist.mean())}


# --------------------------------------------------------------------------------------------
# reconstruct / denoise
# --------------------------------------------------------------------------------------------
def _run_splits(state: dict[str, Any]):
    """The run's train / val images, loaded as training loaded them."""
    dcfg = C.from_dict(GenDataConfig, state["config"]["data"])
    return load_gen_data(dataclasses.replace(dcfg, img_size=state["img_size"][0]))


def _split_of(splits, split: str = "val"):
    """``split`` of ``splits``, or the training images when it is empty."""
    src = getattr(splits, split)
    return src if src is not None and len(src) else splits.train


def _default_split(state: dict[str, Any], split: str = "val"):
    return _split_of(_run_splits(state), split)


def _inputs(inputs: list[str], state: dict[str, Any], limit: int | None = None) -> tuple[torch.Tensor, torch.Tensor | None, list[str]]:
    """Images ``(N, C, H, W)`` in [-1, 1] at the model's size and channels, their classes (conditional models: the
    folder name), and their names; the run's validation images when ``inputs`` is empty."""
    if not inputs:
        src = _default_split(state)
        n = len(src) if limit is None else min(limit, len(src))
        x = scale(torch.stack([src.get(i) for i in range(n)]))
        return x, (src.labels[:n] if state["conditional"] else None), [f"val[{i}]" for i in range(n)]
    from vislab.core.io import read_image
    from vislab.tasks.shared.inputs import expand_inputs, preprocess

    files = expand_inputs(inputs)
    mode = "L" if state["channels"] == 1 else "RGB"
    x = preprocess([read_image(f, mode) for f in files], tuple(state["img_size"]), (0.5,) * state["channels"], (0.5,) * state["channels"])
    y = None
    if state["conditional"]:
        classes = state["classes"]
        bad = [f for f in files if f.parent.name not in classes]
        if bad:
            raise DataError(f"inputs: expected each image of a conditional model in a folder named after its class ({', '.join(classes[:8])}...), "
                            f"got '{bad[0]}'")
        y = torch.tensor([classes.index(f.parent.name) for f in files])
    return x, y, [str(f) for f in files]


def _require_autoencoder(state: dict[str, Any], command: str) -> None:
    if state["kind"] not in AUTOENCODERS:
        raise ConfigError(f"{command}: expected an autoencoder run (ae, dae, vae, cvae), got a {state['preset']} run (it has no encoder)")


def _through(model: nn.Module, x: torch.Tensor, y: torch.Tensor | None, dev: torch.device, batch: int, label: str) -> torch.Tensor:
    out = []
    with Tracker(label, len(x)) as progress, torch.no_grad():
        for idx in torch.arange(len(x)).split(batch):
            yy = y[idx].to(dev) if y is not None else None
            out.append(model.decode(model.encode(x[idx].to(dev), yy)[0], yy).float().cpu())  # the mean reconstruction
            progress.advance(len(idx))
    return torch.cat(out)


def _rows(*sets: torch.Tensor, n: int, per_row: int = 8) -> torch.Tensor:
    """Alternate rows of ``per_row`` images from each set (before / after ...)."""
    rows = []
    for i in range(0, n, per_row):
        rows += [s[i:i + per_row] for s in sets]
    return torch.cat(rows)


def _per_image_csv(path: Path, names: list[str], cols: dict[str, torch.Tensor]) -> None:
    head = "image," + ",".join(cols)
    body = [csv_cell(nm) + "," + ",".join(f"{float(v[i]):.4f}" for v in cols.values()) for i, nm in enumerate(names)]
    atomic_write_text(path, "\n".join([head, *body]) + "\n")


def reconstruct(cfg: ReconstructConfig) -> dict[str, Any]:
    """Images through an autoencoder: ``reconstruct.png`` (originals and reconstructions in alternate rows),
    ``metrics.json`` (MSE, PSNR, SSIM), ``per_image.csv``."""
    model, state, dev = load(cfg.checkpoint, cfg.device)
    _require_autoencoder(state, "reconstruct")
    x, y, names = _inputs(cfg.inputs, state)
    recon = _through(model, x, y, dev, cfg.batch_size, "reconstruct")
    psnr, ssim = psnr_ssim(recon, x)
    mse = (((recon + 1) / 2 - (x + 1) / 2) ** 2).flatten(1).mean(1)
    out = Path(cfg.out) if cfg.out else run_folder(state) / "reconstruct"
    out.mkdir(parents=True, exist_ok=True)
    k = min(cfg.n, len(x))
    png = save_grid(_rows(x[:k], recon[:k], n=k), out / "reconstruct.png", label=f"originals / reconstructions: PSNR {float(psnr.mean()):.2f} dB")
    metrics = {"n": len(x), "mse": float(mse.mean()), "psnr": float(psnr.mean()), "ssim": float(ssim.mean())}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    _per_image_csv(out / "per_image.csv", names, {"psnr": psnr, "ssim": ssim})
    return {"out": str(out), "png": str(png), **metrics}


def denoise(cfg: DenoiseConfig) -> dict[str, Any]:
    """Noisy images through an autoencoder: ``denoise.png`` (noisy / denoised / clean rows), PSNR and SSIM before and after."""
    if not 0 <= cfg.noise <= 1:
        raise ConfigError(f"--noise: expected a level in [0, 1], got {cfg.noise}")
    model, state, dev = load(cfg.checkpoint, cfg.device)
    _require_autoencoder(state, "denoise")
    kind = cfg.kind if cfg.kind != "auto" else (state["corrupt"] if state["corrupt"] != "none" else "gaussian")
    x, y, names = _inputs(cfg.inputs, state)
    g = torch.Generator().manual_seed(cfg.seed)
    noisy = corrupt(x, kind, cfg.noise, torch.randn(x.shape, generator=g), torch.rand((len(x), 1, *x.shape[-2:]), generator=g))
    clean = _through(model, noisy, y, dev, cfg.batch_size, "denoise")
    p0, s0 = psnr_ssim(noisy, x)
    p1, s1 = psnr_ssim(clean, x)
    out = Path(cfg.out) if cfg.out else run_folder(state) / "denoise"
    out.mkdir(parents=True, exist_ok=True)
    k = min(cfg.n, len(x))
    png = save_grid(_rows(noisy[:k], clean[:k], x[:k], n=k), out / "denoise.png",
                    label=f"{kind} {cfg.noise:g}: noisy {float(p0.mean()):.2f} dB -> denoised {float(p1.mean()):.2f} dB (rows: noisy, denoised, clean)")
    metrics = {"n": len(x), "kind": kind, "noise": cfg.noise, "noisy_psnr": float(p0.mean()), "noisy_ssim": float(s0.mean()),
               "psnr": float(p1.mean()), "ssim": float(s1.mean()), "trained_with": state["corrupt"]}
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=1))
    _per_image_csv(out / "per_image.csv", names, {"noisy_psnr": p0, "psnr": p1, "noisy_ssim": s0, "ssim": s1})
    return {"out": str(out), "png": str(png), **metrics}


# --------------------------------------------------------------------------------------------
# eval
# --------------------------------------------------------------------------------------------
def _extractor_spec(cfg: GenEvalConfig, state: dict[str, Any]) -> str | None:
    """The extractor to use (None: none available and none needed)."""
    if cfg.extractor != "auto":
        return cfg.extractor
    run_spec = state["config"]["model"].get("fid_extractor", "")
    if run_spec:
        return run_spec
    from vislab.tasks.generate.features import inception_weights_on_disk

    if inception_weights_on_disk() is not None:
        return "auto"
    return None if state["kind"] in AUTOENCODERS else "auto"  # auto -> the one-line error that says what to pass


def _features(extractor, x: torch.Tensor, batch: int, label: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    feats, probs = [], []
    with Tracker(label, len(x)) as progress:
        for idx in torch.arange(len(x)).split(batch):
            f, p = extractor(x[idx])
            feats.append(f.cpu())
            if p is not None:
                probs.append(p.cpu())
            progress.advance(len(idx))
    return torch.cat(feats), (torch.cat(probs) if probs else None)


def evaluate(cfg: GenEvalConfig) -> dict[str, Any]:
    """FID, KID, precision / recall (and, with a classifier's features, Inception Score, class confidence, entropy,
    coverage and -- conditional models -- the share of samples of the requested class) of ``--n`` samples against the
    real images; for autoencoders also reconstruction MSE / PSNR / SSIM and the ELBO. Every number is named after its
    extractor; a noise baseline in the same features is given beside."""
    from vislab.metrics.generative import GenerativeMetrics, fid
    from vislab.tasks.generate.features import load_extractor

    if cfg.n < 10:
        raise ConfigError(f"--n: expected >= 10 samples, got {cfg.n}")
    model, state, dev = load(cfg.checkpoint, cfg.device)
    out = Path(cfg.out) if cfg.out else run_folder(state) / "eval"
    out.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"n": cfg.n, "preset": state["preset"]}
    splits = _run_splits(state)
    src = _split_of(splits, cfg.real)
    if state["kind"] in AUTOENCODERS:
        result.update(_reconstruction_numbers(model, state, src, dev, cfg.batch_size))
    spec = _extractor_spec(cfg, state)
    if spec is not None:
        extractor = load_extractor(spec, dev)
        name = extractor.name
        y = labels_for(state, cfg.n, -1)
        diffusion = {"steps": min(cfg.steps, model.timesteps), "sampler": cfg.sampler, "guidance": cfg.guidance} if state["kind"] == "diffusion" else {}
        with Tracker("eval: sample", cfg.n) as progress:
            fake = generate_images(model, state, cfg.n, y, cfg.seed, dev, cfg.batch_size, progress, **diffusion)
        n_real = min(cfg.n, len(src))
        real = scale(torch.stack([src.get(i) for i in torch.randperm(len(src), generator=torch.Generator().manual_seed(cfg.seed))[:n_real].tolist()]))
        fr, _ = _features(extractor, real, cfg.batch_size, "eval: real features")
        ff, probs = _features(extractor, fake, cfg.batch_size, "eval: sample features")
        m = GenerativeMetrics(kid_subsets=50, kid_subset_size=min(1000, n_real, cfg.n))
        m.update_real(fr)
        m.update_fake(ff, probs)
        scores = m.compute()
        noise = torch.rand(fake.shape, generator=torch.Generator().manual_seed(cfg.seed + 1)) * 2 - 1
        scores["noise_fid"] = fid(fr, _features(extractor, noise, cfg.batch_size, "eval: noise baseline")[0])
        other = _split_of(splits, "train" if cfg.real == "val" else "val")  # the floor: real images against real images
        pick = torch.randperm(len(other), generator=torch.Generator().manual_seed(cfg.seed + 2))[: min(len(other), cfg.n)]
        fo, po = _features(extractor, scale(torch.stack([other.get(int(i)) for i in pick])), cfg.batch_size, "eval: real baseline")
        scores["real_fid"] = fid(fr, fo)
        if po is not None:
            scores["real_confidence"] = float(po.max(1).values.mean())
        names = extractor.classes or []
        if y is not None and probs is not None and all(c in names for c in state["classes"]):  # the classifier knows the run's classes
            asked = torch.tensor([names.index(state["classes"][int(c)]) for c in y])
            scores["class_match"] = float((probs.argmax(1) == asked).float().mean())  # samples of the class asked for
        result.update({f"{k}": v for k, v in scores.items()})
        result["extractor"] = name
        save_grid(fake[:64], out / "samples.png", label=f"{state['preset']}: FID {scores['fid']:.2f} in {name}")
    atomic_write_text(out / "metrics.json", json.dumps({k: v for k, v in result.items()}, indent=1))
    result["out"] = str(out)
    return result


def _reconstruction_numbers(model: nn.Module, state: dict[str, Any], src, dev: torch.device, batch: int) -> dict[str, float]:
    """The training objective's terms, PSNR and SSIM on the real images (the ELBO in nats for a VAE with bce)."""
    from vislab.engine.evaluate import run_eval
    from vislab.tasks.generate.task import noise_spec, resolved

    mcfg = C.from_dict(GenModelConfig, state["config"]["model"])
    r = resolved(mcfg)
    hooks = AETask(r["kind"], r["conditional"], mcfg.beta, mcfg.recon_loss, r["corrupt"], mcfg.corrupt_level)
    stream = GenStream(src, batch, train=False, noise=noise_spec(r, state["channels"], state["img_size"][0], mcfg.timesteps),
                       seed=state["config"]["train"]["seed"], device=dev)
    with Tracker("eval: reconstruct", len(src)) as progress:
        return run_eval(hooks, model, stream, progress=progress).compute()


# --------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------
class _Decoder(nn.Module):
    """What an exported generator computes: ``z`` (and ``y``) -> images in [-1, 1]."""

    def __init__(self, net: nn.Module, autoencoder: bool):
        super().__init__()
        self.net, self.autoencoder = net, autoencoder

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net.decode(z, y) if self.autoencoder else self.net(z, y)


class _Denoiser(nn.Module):
    """A diffusion model's network: ``(x_t, t[, y]) -> predicted noise``."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(x, t, y)


def export(cfg: GenExportConfig) -> dict[str, Any]:
    """The generator (GAN), decoder (autoencoder) or denoising U-Net (diffusion) as ONNX / TorchScript, each run on a
    check batch and compared with the eager model; ``export.json`` says what the inputs and outputs are."""
    from vislab.tasks.shared.export import _check

    model, state, _ = load(cfg.checkpoint, "cpu")
    kind, cond = state["kind"], state["conditional"]
    g = torch.Generator().manual_seed(0)
    c, s = state["channels"], state["img_size"][0]
    if kind == "diffusion":
        net: nn.Module = _Denoiser(model.net)
        inputs = [torch.randn(2, c, s, s, generator=g), torch.randint(0, state["model_args"].get("timesteps", 1000), (2,), generator=g)]
        names, output = ["x", "t"], "eps"
    else:
        net = _Decoder(model["G"] if kind == "gan" else model, kind in AUTOENCODERS)
        inputs, names, output = [torch.randn(2, state["z_dim"], generator=g)], ["z"], "images"
    if cond:
        inputs.append(torch.tensor([0, state["num_classes"] - 1]))
        names.append("y")
    net = net.eval()
    with torch.no_grad():
        ref = net(*inputs)
    outdir = Path(cfg.out) if cfg.out else run_folder(state) / "export"
    outdir.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"checkpoint": state["path"], "inputs": names, "output": output}
    formats = ["onnx", "torchscript"] if cfg.format == "all" else [cfg.format]
    for fmt in formats:
        if fmt == "torchscript":
            report[fmt] = _torchscript(net, inputs, ref, outdir / "generator.ts", cfg, _check)
        else:
            report[fmt] = _onnx(net, inputs, names, ref, outdir / "generator.onnx", cfg, _check)
    meta = {"preset": state["preset"], "kind": kind, "classes": state["classes"] if cond else None, "channels": c, "img_size": [s, s],
            "z_dim": state["z_dim"], "range": "images in [-1, 1]: (x + 1) * 127.5 gives 0..255", **report}
    atomic_write_text(outdir / "export.json", json.dumps(meta, indent=1))
    return {"out": str(outdir), **report}


def _torchscript(net, inputs, ref, path: Path, cfg, check) -> dict[str, Any]:
    import warnings

    from vislab.core.io import atomic_path

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, tuple(inputs), check_trace=False)
        with atomic_path(path) as tmp:
            traced.save(str(tmp))
        loaded = torch.jit.load(str(path))
    with torch.no_grad():
        return {"path": str(path), "max_abs_diff": check("torchscript", loaded(*inputs).numpy(), ref, cfg.atol)}


def _onnx(net, inputs, names, ref, path: Path, cfg, check) -> dict[str, Any]:
    import contextlib
    import io
    import logging

    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("export onnx: expected onnxruntime to be installed, got ImportError; pip install 'vislab[export]'") from None
    from vislab.core.io import atomic_path

    batch = torch.export.Dim("batch", min=1, max=4096)
    with atomic_path(path) as tmp, contextlib.redirect_stdout(io.StringIO()):
        logging.getLogger("torch.onnx").setLevel(logging.ERROR)
        torch.onnx.export(net, tuple(inputs), str(tmp), input_names=names, output_names=["out"], opset_version=cfg.opset,
                          dynamic_shapes=tuple({0: batch} for _ in inputs), external_data=False, dynamo=True)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {n: v.numpy() for n, v in zip(names, inputs, strict=True)}
    return {"path": str(path), "max_abs_diff": check("onnx", sess.run(None, feed)[0], ref, cfg.atol)}


