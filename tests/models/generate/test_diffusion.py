"""DDPM: schedules and sampler steps against HuggingFace diffusers, the U-Net, guidance, sampling, a tiny overfit."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from vislab.core.errors import ModelError
from vislab.models import create_model, list_models
from vislab.models.generate.diffusion import Diffusion, ddpm, make_betas
from vislab.models.generate.unet import UNet

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

DIFFUSERS_SCHEDULE = {"linear": "linear", "cosine": "squaredcos_cap_v2"}


@pytest.fixture(scope="module")
def schedulers():
    """diffusers' DDPMScheduler and DDIMScheduler (defaults: leading spacing, steps_offset 0, clip_sample,
    epsilon prediction; DDPM fixed_small variance; DDIM set_alpha_to_one)."""
    mod = pytest.importorskip("diffusers.schedulers")
    return mod.DDPMScheduler, mod.DDIMScheduler


class FakeEps(nn.Module):
    """A fixed, deterministic stand-in for the U-Net: a seeded 3x3 conv of ``x`` plus a ``t``-dependent offset."""

    def __init__(self, in_chans: int = 1, img_size: int = 8):
        super().__init__()
        self.in_chans, self.img_size, self.num_classes = in_chans, img_size, 0
        g = torch.Generator().manual_seed(0)
        self.conv = nn.Conv2d(in_chans, in_chans, 3, padding=1)
        with torch.no_grad():
            self.conv.weight.copy_(torch.randn(self.conv.weight.shape, generator=g) * 0.3)
            self.conv.bias.zero_()

    def forward(self, x, t, y=None):
        t = torch.as_tensor(t).float().reshape(-1, 1, 1, 1)
        return torch.tanh(self.conv(x)) + 0.3 * torch.sin(t / 97.0)


def fake_model(timesteps: int = 1000, schedule: str = "linear") -> Diffusion:
    return Diffusion(FakeEps(), timesteps, schedule)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("T", [1000, 100])
def test_schedules_match_diffusers(schedulers, schedule, T):
    ref = schedulers[0](num_train_timesteps=T, beta_schedule=DIFFUSERS_SCHEDULE[schedule])
    betas = make_betas(schedule, T)
    assert betas.dtype == torch.float64 and betas.shape == (T,)
    torch.testing.assert_close(betas, ref.betas.double(), atol=1e-6, rtol=0)
    m = fake_model(T, schedule)
    torch.testing.assert_close(m.betas.double(), ref.betas.double(), atol=1e-6, rtol=0)
    torch.testing.assert_close(m.alphas_cumprod.double(), ref.alphas_cumprod.double(), atol=1e-6, rtol=0)
    with pytest.raises(ModelError, match="expected kind"):
        make_betas("quadratic", T)


def float64(ref, schedule: str):
    """``ref`` computing in float64 on our float64 betas (checked against its own above), as our sampler's scalar
    math does: float32 diffusers loses ~3 digits of ``1 - abar_t / abar_prev`` near t = 0 (5e-4 off at t = 1)."""
    ref.alphas_cumprod = torch.cumprod(1 - make_betas(schedule, ref.config.num_train_timesteps), 0)
    ref.one = ref.final_alpha_cumprod = torch.tensor(1.0, dtype=torch.float64)
    return ref


def pairs(ts: list[int], idx: list[int]):
    """``(t, prev)`` at positions ``idx`` of the descending timesteps ``ts``; prev = -1 after the last."""
    return [(ts[i], ts[i + 1] if i + 1 < len(ts) else -1) for i in idx]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
@pytest.mark.parametrize("steps", [None, 50])
def test_ddpm_step_matches_diffusers(schedulers, schedule, steps):
    ref = float64(schedulers[0](num_train_timesteps=1000, beta_schedule=DIFFUSERS_SCHEDULE[schedule]), schedule)
    if steps:
        ref.set_timesteps(steps)  # leading spacing: 980, 960, ..., 20, 0
    ts = ref.timesteps.tolist()
    m = fake_model(1000, schedule)
    g = torch.Generator().manual_seed(1)
    for i, (t, prev) in enumerate(pairs(ts, [0, 1, len(ts) // 2, len(ts) - 2, len(ts) - 1])):  # last: t = 0, no noise
        x = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64) * 1.5
        eps = torch.randn(3, 1, 8, 8, generator=g, dtype=torch.float64)
        want = ref.step(eps, t, x, generator=torch.Generator().manual_seed(i)).prev_sample  # same noise: same seed, dtype
        got = m.step(x, eps, t, prev, sampler="ddpm", generator=torch.Generator().manual_seed(i))
        torch.testing.assert_close(got, want, atol=1e-6, rtol=1e-6)
        if t >= 100:  # float32 as diffusers ships it, away from its cancellation near t = 0 (1e-5 off at t = 20)
            want = schedulers[0](num_train_timesteps=1000, beta_schedule=DIFFUSERS_SCHEDULE[schedule])
            if steps:
                want.set_timesteps(steps)
            want = want.step(eps.float(), t, x.float(), generator=torch.Generator().manual_seed(i)).prev_sample
            got = m.step(x.float(), eps.float(), t, prev, generator=torch.Generator().manual_seed(i))
            torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_ddim_step_matches_diffusers(schedulers, schedule):
    ref = schedulers[1](num_train_timesteps=1000, beta_schedule=DIFFUSERS_SCHEDULE[schedule])
    assert ref.config.set_alpha_to_one and ref.config.steps_offset == 0 and ref.config.timestep_spacing == "leading"
    ref.set_timesteps(50)
    m = fake_model(1000, schedule)
    g = torch.Generator().manual_seed(2)
    for i, (t, prev) in enumerate(pairs(ref.timesteps.tolist(), [0, 7, 25, 48, 49])):  # 49: t = 0 -> abar_prev = 1
        x, eps = torch.randn(3, 1, 8, 8, generator=g) * 1.5, torch.randn(3, 1, 8, 8, generator=g)
        want = ref.step(eps, t, x, eta=0.0).prev_sample
        torch.testing.assert_close(m.step(x, eps, t, prev, sampler="ddim"), want, atol=1e-5, rtol=1e-5)
        want = ref.step(eps, t, x, eta=0.7, generator=torch.Generator().manual_seed(i)).prev_sample
        got = m.step(x, eps, t, prev, sampler="ddim", eta=0.7, generator=torch.Generator().manual_seed(i))
        torch.testing.assert_close(got, want, atol=1e-5, rtol=1e-5)


def test_whole_ddim_loop_matches_diffusers(schedulers):
    m = fake_model(1000, "linear")
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(3))
    ref = schedulers[1](num_train_timesteps=1000)
    ref.set_timesteps(50)
    x = noise.clone()
    for t in ref.timesteps:
        x = ref.step(m.net(x, t), t, x).prev_sample
    got = m.sample(4, sampler="ddim", noise=noise)  # 50 steps by default
    torch.testing.assert_close(got, x.clamp(-1, 1), atol=1e-4, rtol=0)


def test_whole_respaced_ddpm_loop_matches_diffusers(schedulers):
    m = fake_model(1000, "cosine")
    noise = torch.randn(4, 1, 8, 8, generator=torch.Generator().manual_seed(4))
    ref = schedulers[0](num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2")
    ref.set_timesteps(20)
    x, g = noise.clone(), torch.Generator().manual_seed(5)
    for t in ref.timesteps:
        x = ref.step(m.net(x, t), t, x, generator=g).prev_sample
    got = m.sample(4, steps=20, noise=noise, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(got, x.clamp(-1, 1), atol=1e-4, rtol=0)


@pytest.mark.parametrize("size,chans,classes", [(28, 1, 0), (32, 3, 0), (28, 3, 10), (32, 1, 10)])
def test_unet_shapes(size, chans, classes):
    net = UNet(chans, size, width=8, num_classes=classes)
    x = torch.randn(2, chans, size, size)
    y = torch.tensor([0, classes]) if classes else None
    out = net(x, torch.tensor([0, 999]), y)
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().mean().backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing[:5]


def test_default_unet_and_registry():
    assert "ddpm" in list_models(task="generate")
    m = create_model("ddpm", img_size=28, mults=[1, 2, 2], num_classes=10)  # a list, as from JSON
    assert isinstance(m, Diffusion) and m.net.width == 32 and m.timesteps == 1000 and m.schedule == "linear"
    assert (m.num_classes, m.in_chans, m.img_size) == (10, 1, 28)
    x, t = torch.randn(2, 1, 28, 28), torch.tensor([5, 500])
    assert m.net(x, t, torch.tensor([1, 2])).shape == (2, 1, 28, 28)
    noise = torch.randn_like(x)
    assert torch.equal(m(x, t, noise, torch.tensor([1, 2])), m.loss(x, t, noise, torch.tensor([1, 2])))  # forward is the loss (DDP)
    assert {"betas", "alphas_cumprod"} <= set(m.state_dict())


@pytest.mark.parametrize("kw,match", [({"img_size": 30}, "divisible by 2\\^\\(len\\(mults\\)-1\\) = 4, got 30"),
                                      ({"img_size": 28, "mults": (1, 2, 2, 2)}, "= 8, got 28"),
                                      ({"mults": "122"}, "mults a list or tuple"), ({"schedule": "quad"}, "schedule"),
                                      ({"timesteps": 1}, "timesteps"), ({"in_chans": 2}, "in_chans"),
                                      ({"width": 0}, "width"), ({"dropout": 1.5}, "dropout")])
def test_bad_args_raise_model_error(kw, match):
    with pytest.raises(ModelError, match=match):
        ddpm(**kw)


def test_unconditional_rejects_labels():
    net = UNet(1, 8, width=8, mults=(1, 2))
    with pytest.raises(ModelError, match="y=None"):
        net(torch.randn(1, 1, 8, 8), torch.tensor([1]), torch.tensor([0]))


def test_guidance_and_class_dropout():
    torch.manual_seed(0)
    m = ddpm(img_size=8, width=8, mults=(1, 2), timesteps=50, num_classes=3).eval()
    x, t, y = torch.randn(4, 1, 8, 8), torch.tensor([0, 10, 20, 49]), torch.tensor([0, 1, 2, 1])
    eps_c, eps_u = m.net(x, t, y), m.net(x, t, torch.full_like(y, 3))
    assert not torch.allclose(eps_c, eps_u)
    torch.testing.assert_close(m.predict_eps(x, t, y, guidance=1.0), eps_c)
    torch.testing.assert_close(m.predict_eps(x, t, y, guidance=0.0), eps_u, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.predict_eps(x, t, y, guidance=3.0), eps_u + 3 * (eps_c - eps_u), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(m.predict_eps(x, t, None, guidance=3.0), eps_u)

    x0, noise = torch.rand(4, 1, 8, 8) * 2 - 1, torch.randn(4, 1, 8, 8)
    null = m.loss(x0, t, noise, torch.full_like(y, 3))
    assert null.shape == (4,)
    torch.testing.assert_close(m.loss(x0, t, noise, y, drop=torch.ones(4, dtype=torch.bool)), null)
    torch.testing.assert_close(m.loss(x0, t, noise, None), null)
    some = m.loss(x0, t, noise, y, drop=torch.tensor([True, False, True, False]))
    cond = m.loss(x0, t, noise, y)
    torch.testing.assert_close(some[[0, 2]], null[[0, 2]])
    torch.testing.assert_close(some[[1, 3]], cond[[1, 3]])
    # the loss is the per-sample MSE of the noise prediction at q_sample(x0, t, noise)
    want = (m.net(m.q_sample(x0, t, noise), t, y) - noise).square().mean((1, 2, 3))
    torch.testing.assert_close(cond, want)


@pytest.mark.parametrize("sampler,eta", [("ddpm", 0.0), ("ddim", 0.0), ("ddim", 0.5)])
def test_sampling_is_reproducible_and_bounded(sampler, eta):
    torch.manual_seed(0)
    m = ddpm(img_size=8, width=8, mults=(1, 2), timesteps=100, schedule="cosine", num_classes=2, dropout=0.1)
    calls = []
    kw = {"steps": 6, "sampler": sampler, "eta": eta, "y": 1, "guidance": 2.0}
    a, frames = m.sample(3, generator=torch.Generator().manual_seed(7), frames=4,
                         callback=lambda i, n: calls.append((i, n)), **kw)
    b = m.sample(3, generator=torch.Generator().manual_seed(7), **kw)
    c = m.sample(3, generator=torch.Generator().manual_seed(8), **kw)
    assert m.training  # restored after sampling in eval mode
    assert a.shape == (3, 1, 8, 8) and a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, b, atol=0, rtol=0)
    assert not torch.allclose(a, c)
    assert calls == [(i, 6) for i in range(1, 7)]
    start = torch.randn(3, 1, 8, 8, generator=torch.Generator().manual_seed(7))
    assert len(frames) == 4 and torch.equal(frames[0], start.clamp(-1, 1)) and torch.equal(frames[-1], a)
    if sampler == "ddim" and eta == 0:  # deterministic given the start noise
        torch.testing.assert_close(m.sample(3, noise=start, **kw), a)
    with pytest.raises(ModelError, match="steps"):
        m.sample(2, steps=101)
    with pytest.raises(ModelError, match="sampler"):
        m.sample(2, sampler="euler")


def test_checkpoint_round_trip():
    torch.manual_seed(0)
    a = ddpm(img_size=8, width=8, mults=(1, 2), timesteps=30, schedule="cosine")
    b = ddpm(img_size=8, width=8, mults=(1, 2), timesteps=30, schedule="cosine")
    b.load_state_dict(a.state_dict())
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    torch.testing.assert_close(a.sample(2, steps=5, generator=g()), b.sample(2, steps=5, generator=g()))


def test_tiny_overfit():
    torch.manual_seed(0)
    m = ddpm(img_size=16, width=8, mults=(1, 2), timesteps=100, schedule="cosine", attn=False)
    img = torch.linspace(-1, 1, 16).outer(torch.linspace(-1, 1, 16)).sign().expand(16, 1, 16, 16)  # quadrants
    g = torch.Generator().manual_seed(0)
    t_eval, n_eval = torch.randint(0, 100, (16,), generator=g), torch.randn(16, 1, 16, 16, generator=g)
    with torch.no_grad():
        before = m.loss(img, t_eval, n_eval).mean().item()
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    for _ in range(150):
        loss = m.loss(img, torch.randint(0, 100, (16,)), torch.randn(16, 1, 16, 16)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        after = m.loss(img, t_eval, n_eval).mean().item()
    assert after < 0.2 * before, (before, after)  # seen: ~1.0 -> ~0.08
