"""Denoising diffusion (DDPM, Ho et al., 2020) around the small :class:`~vislab.models.generate.unet.UNet`.

Training noises an image ``x0`` to ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps`` (``abar_t`` the cumulative
product of ``1 - beta``) and regresses the noise ``eps`` (:meth:`Diffusion.loss`). Sampling runs the reverse chain
from pure noise: ancestral DDPM steps (the posterior ``q(x_{t-1} | x_t, x0)``, "fixed_small" variance) or DDIM
steps (Song et al., 2021; ``eta=0`` is deterministic), on all timesteps or on an evenly strided subset. With
``num_classes > 0`` the network is class-conditional and samples can use classifier-free guidance (Ho & Salimans,
2021): ``eps_u + w (eps_c - eps_u)``, the unconditional ``eps_u`` coming from the "no class" index ``num_classes``.

The schedules and the sampler steps follow HuggingFace diffusers' ``DDPMScheduler`` / ``DDIMScheduler`` with their
defaults (``timestep_spacing="leading"``, ``steps_offset=0``, ``clip_sample=True``, ``prediction_type="epsilon"``;
DDPM ``variance_type="fixed_small"``; DDIM ``set_alpha_to_one=True``), so a step here equals a step there; the tests
check it.

Example:
    >>> import torch
    >>> model = ddpm(in_chans=1, img_size=8, width=8, mults=(1, 2), timesteps=20, schedule="cosine")
    >>> x0 = torch.rand(4, 1, 8, 8) * 2 - 1
    >>> model.loss(x0, torch.randint(0, 20, (4,)), torch.randn_like(x0)).shape
    torch.Size([4])
    >>> model.sample(2, steps=5, sampler="ddim", generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 1, 8, 8])
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import nn

from vislab.core.errors import ModelError
from vislab.models.generate.unet import UNet
from vislab.models.registry import register_model

SCHEDULES = ("linear", "cosine")
SAMPLERS = ("ddpm", "ddim")


def make_betas(kind: str, timesteps: int) -> torch.Tensor:
    """The noise schedule ``beta_1..beta_T`` as float64 ``(timesteps,)``.

    ``"linear"``: ``linspace(1e-4, 0.02, timesteps)``, diffusers' ``beta_schedule="linear"`` with its default
    ``beta_start`` / ``beta_end``, *not* rescaled with ``timesteps``: it is made for ~1000 steps (with 100 steps the
    chain ends at ``abar_T ~ 0.37``, far from pure noise; use ``"cosine"`` for short chains).
    ``"cosine"``: Nichol & Dhariwal (2021), diffusers' ``"squaredcos_cap_v2"``:
    ``beta_i = min(1 - abar((i+1)/T) / abar(i/T), 0.999)``, ``abar(s) = cos((s + 0.008) / 1.008 * pi / 2)^2``.
    """
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 1:
        raise ModelError(f"make_betas: expected timesteps an int >= 1, got {timesteps!r}")
    if kind == "linear":
        return torch.linspace(1e-4, 0.02, timesteps, dtype=torch.float64)
    if kind == "cosine":
        abar = [math.cos((i / timesteps + 0.008) / 1.008 * math.pi / 2) ** 2 for i in range(timesteps + 1)]
        return torch.tensor([min(1 - abar[i + 1] / abar[i], 0.999) for i in range(timesteps)], dtype=torch.float64)
    raise ModelError(f"make_betas: expected kind one of {SCHEDULES}, got {kind!r}")


def _spaced(timesteps: int, steps: int) -> list[int]:
    """diffusers' "leading" spacing (``steps_offset=0``): ``[(steps-1) r, ..., r, 0]`` with ``r = timesteps // steps``."""
    ratio = timesteps // steps
    return [i * ratio for i in reversed(range(steps))]


def _randn(shape, generator: torch.Generator | None, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Standard normal noise drawn on ``generator``'s device (the model's without one), then moved to ``device``."""
    gdev = generator.device if generator is not None else device
    return torch.randn(tuple(shape), generator=generator, device=gdev, dtype=dtype).to(device)


class Diffusion(nn.Module):
    """A noise-predicting network ``net(x_t, t, y) -> eps`` plus its schedule: buffers ``betas`` and
    ``alphas_cumprod`` (float32, saved with the state dict, used by training); sampling steps use the float64 values
    of the same schedule. ``forward`` is :meth:`loss` -- the training objective -- so that a DDP wrapper around the
    model synchronises its gradients; the network's prediction is :meth:`predict_eps` (or ``net(x_t, t, y)``)."""

    def __init__(self, net: UNet, timesteps: int = 1000, schedule: str = "linear"):
        super().__init__()
        betas = make_betas(schedule, timesteps)
        self.net = net
        self.timesteps, self.schedule = timesteps, schedule
        self.num_classes, self.in_chans, self.img_size = net.num_classes, net.in_chans, net.img_size
        self.register_buffer("betas", betas.float())
        self.register_buffer("alphas_cumprod", torch.cumprod(1 - betas, 0).float())
        # The sampler's scalar math runs in float64 on these: near t = 0, 1 - abar_t / abar_prev (a beta of ~1e-4)
        # computed from float32 values would lose ~3 of its 7 digits.
        self._abar = torch.cumprod(1 - betas, 0).tolist()

    def forward(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, y: torch.Tensor | None = None,
                drop: torch.Tensor | None = None) -> torch.Tensor:
        return self.loss(x0, t, noise, y, drop)

    def _t(self, t: torch.Tensor | int, x: torch.Tensor) -> torch.Tensor:
        t = torch.as_tensor(t, dtype=torch.long, device=x.device).reshape(-1)
        return t.expand(x.shape[0]) if t.numel() == 1 else t

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """The forward process: ``x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) noise`` for ``t (B,)`` in ``[0, timesteps)``."""
        abar = self.alphas_cumprod[self._t(t, x0)].to(x0.dtype)[:, None, None, None]
        return abar.sqrt() * x0 + (1 - abar).sqrt() * noise

    def loss(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor, y: torch.Tensor | None = None,
             drop: torch.Tensor | None = None) -> torch.Tensor:
        """Per-sample ``(B,)`` MSE between ``noise`` and the network's prediction from ``q_sample(x0, t, noise)``.

        ``drop`` ``(B,)`` bool: those samples get the "no class" label (classifier-free guidance training); without
        ``y`` a conditional model sees "no class" everywhere. ``drop`` does nothing on an unconditional model.
        """
        t = self._t(t, x0)
        if self.num_classes and drop is not None and y is not None:
            y = torch.where(drop.to(y.device), torch.full_like(y, self.num_classes), y)
        eps = self.net(self.q_sample(x0, t, noise), t, y)
        return (eps - noise).pow(2).flatten(1).mean(1)

    def predict_eps(self, x: torch.Tensor, t: torch.Tensor | int, y: torch.Tensor | None = None,
                    guidance: float = 1.0) -> torch.Tensor:
        """The predicted noise; with ``y`` and ``guidance != 1``, ``eps_u + guidance (eps_c - eps_u)`` (one pass of 2B)."""
        t = self._t(t, x)
        if y is None or guidance == 1.0 or not self.num_classes:
            return self.net(x, t, y)
        null = torch.full_like(y, self.num_classes)
        eps_c, eps_u = self.net(torch.cat([x, x]), torch.cat([t, t]), torch.cat([y, null])).chunk(2)
        return eps_u + guidance * (eps_c - eps_u)

    @torch.no_grad()
    def step(self, x: torch.Tensor, eps: torch.Tensor, t: int, prev: int, *, sampler: str = "ddpm", eta: float = 0.0,
             clip: bool = True, generator: torch.Generator | None = None) -> torch.Tensor:
        """One reverse step ``x_t -> x_prev`` (``prev < t``; ``-1`` after the last step) from the predicted noise ``eps``.

        DDPM: the posterior mean of the chain ``... -> prev -> t`` plus ``sqrt(var) z`` with the "fixed_small"
        variance ``(1 - abar_prev) / (1 - abar_t) (1 - abar_t / abar_prev)`` (no noise at ``t = 0``). DDIM:
        ``sqrt(abar_prev) x0 + sqrt(1 - abar_prev - sigma^2) eps + sigma z``, ``sigma = eta sqrt(var)``. ``abar_{-1} = 1``.
        ``z`` is drawn from ``generator`` (on its device, in ``x``'s dtype), as diffusers does.
        """
        a_t, a_prev = self._abar[t], (self._abar[prev] if prev >= 0 else 1.0)
        x0 = (x - math.sqrt(1 - a_t) * eps) / math.sqrt(a_t)
        if clip:
            x0 = x0.clamp(-1, 1)
        var = (1 - a_prev) / (1 - a_t) * (1 - a_t / a_prev)
        if sampler == "ddpm":
            alpha = a_t / a_prev
            x = (math.sqrt(a_prev) * (1 - alpha) * x0 + math.sqrt(alpha) * (1 - a_prev) * x) / (1 - a_t)
            if t > 0:
                x = x + math.sqrt(max(var, 1e-20)) * _randn(x.shape, generator, x.device, x.dtype)
            return x
        if sampler != "ddim":
            raise ModelError(f"step: expected sampler one of {SAMPLERS}, got {sampler!r}")
        sigma = eta * math.sqrt(var)
        x = math.sqrt(a_prev) * x0 + math.sqrt(max(1 - a_prev - sigma**2, 0.0)) * eps
        return x + sigma * _randn(x.shape, generator, x.device, x.dtype) if eta > 0 else x

    @torch.no_grad()
    def sample(self, n: int, *, steps: int | None = None, sampler: str = "ddpm", eta: float = 0.0,
               y: torch.Tensor | Sequence[int] | int | None = None, guidance: float = 1.0,
               generator: torch.Generator | None = None, noise: torch.Tensor | None = None, clip: bool = True,
               frames: int = 0, callback: Callable[[int, int], None] | None = None):
        """``n`` images ``(n, C, img_size, img_size)`` in ``[-1, 1]`` from the reverse chain.

        ``steps``: DDPM defaults to all ``timesteps``, DDIM to 50; fewer steps use the strided timesteps
        ``[(steps-1) r, ..., r, 0]``, ``r = timesteps // steps`` (diffusers' "leading" spacing), DDPM with the
        posterior of that shorter chain. ``eta`` (DDIM only): 0 deterministic, 1 DDPM-like noise. ``y``: one class id
        for all, or ``n`` of them (None: unconditional); ``guidance``: the classifier-free guidance weight.
        ``generator``: the source of every random draw (the start noise unless ``noise`` is given, and the noise
        added by each step), drawn on its device then moved to the model's, so runs are reproducible. ``clip``:
        clamp the predicted ``x0`` to ``[-1, 1]`` at each step. ``frames > 0``: also return a list of that many
        evenly spaced states ``x_t`` (the start noise first, the result last), clamped to ``[-1, 1]``.
        ``callback(i, total)`` runs after step ``i`` (1-based) of ``total``.
        """
        if sampler not in SAMPLERS:
            raise ModelError(f"sample: expected sampler one of {SAMPLERS}, got {sampler!r}")
        steps = (self.timesteps if sampler == "ddpm" else min(50, self.timesteps)) if steps is None else steps
        if not isinstance(steps, int) or not 1 <= steps <= self.timesteps:
            raise ModelError(f"sample: expected steps an int in [1, {self.timesteps}], got {steps!r}")
        if not isinstance(n, int) or n < 1 or frames < 0 or eta < 0:
            raise ModelError(f"sample: expected n >= 1, frames >= 0 and eta >= 0, got n={n!r}, frames={frames}, eta={eta}")
        device, shape = self.betas.device, (n, self.in_chans, self.img_size, self.img_size)
        dtype = next(self.net.parameters()).dtype

        if noise is not None and tuple(noise.shape) != shape:
            raise ModelError(f"sample: expected noise of shape {shape}, got {tuple(noise.shape)}")
        x = noise.to(device, dtype) if noise is not None else _randn(shape, generator, device, dtype)
        if y is not None:
            y = torch.as_tensor(y, dtype=torch.long, device=device).reshape(-1)
            y = y.expand(n) if y.numel() == 1 else y
            if y.shape != (n,):
                raise ModelError(f"sample: expected y one class id or {n} of them, got {y.numel()}")

        ts = _spaced(self.timesteps, steps)
        picks = [round(k * steps / (frames - 1)) for k in range(frames)] if frames > 1 else [steps] * frames
        keep = set(picks)  # state k is x after k steps; 0 is the start noise
        states = {0: x.clamp(-1, 1)} if 0 in keep else {}
        was_training = self.training
        self.eval()
        try:
            for i, t in enumerate(ts):
                prev = ts[i + 1] if i + 1 < len(ts) else -1
                eps = self.predict_eps(x, t, y, guidance)
                x = self.step(x, eps, t, prev, sampler=sampler, eta=eta, clip=clip, generator=generator)
                if i + 1 in keep:
                    states[i + 1] = x.clamp(-1, 1)
                if callback is not None:
                    callback(i + 1, steps)
        finally:
            self.train(was_training)
        out = x.clamp(-1, 1)
        return (out, [states[k] for k in picks]) if frames else out


@register_model(task="generate", family="diffusion")
def ddpm(in_chans: int = 1, img_size: int = 32, width: int = 32, mults: Sequence[int] = (1, 2, 2), num_res: int = 1,
         attn: bool = True, timesteps: int = 1000, schedule: str = "linear", num_classes: int = 0,
         dropout: float = 0.0) -> Diffusion:
    """DDPM: a U-Net of ``width`` channels times ``mults`` per level (``num_res`` blocks each, attention at the
    lowest resolution if ``attn``) and a ``schedule`` ("linear" or "cosine") of ``timesteps`` noise levels;
    class-conditional with classifier-free guidance when ``num_classes > 0``."""
    if isinstance(mults, (str, bytes)) or not isinstance(mults, (list, tuple)) or not all(
            isinstance(m, int) and not isinstance(m, bool) for m in mults):
        raise ModelError(f"ddpm: expected mults a list or tuple of ints, got {mults!r}")
    if schedule not in SCHEDULES:
        raise ModelError(f"ddpm: expected schedule one of {SCHEDULES}, got {schedule!r}")
    if not isinstance(timesteps, int) or isinstance(timesteps, bool) or timesteps < 2:
        raise ModelError(f"ddpm: expected timesteps an int >= 2, got {timesteps!r}")
    if in_chans not in (1, 3):
        raise ModelError(f"ddpm: expected in_chans 1 or 3, got {in_chans}")
    net = UNet(in_chans, img_size, width, tuple(mults), num_res, attn, num_classes, dropout)
    return Diffusion(net, timesteps, schedule)
