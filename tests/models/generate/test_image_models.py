"""Image generative models: conv autoencoder / VAE / conditional VAE, DCGAN (conditional, spectral norm), image MLP GAN.

Tiny widths, one thread. Parameter counts of the default 32 px, 1-channel, unconditional builds:
conv_ae 411,377; vae 444,161; dcgan G 984,641 + D 661,313 = 1,645,954 (num_classes=10: G 1,247,425, D 702,273);
gan_mlp G 345,600 + D 328,449 = 674,049.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from vislab.core.errors import ModelError, ShapeError
from vislab.models.generate.blocks import dcgan_init, norm2d, pyramid
from vislab.models.registry import MODELS

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

SIZES = [16, 28, 32, 64]
TINY = {"conv_ae": {"z_dim": 4, "width": 4}, "vae": {"z_dim": 4, "width": 4},
        "dcgan": {"z_dim": 4, "width": 4}, "gan_mlp": {"z_dim": 4, "hidden": 8}}


def _images(b: int, c: int, s: int) -> torch.Tensor:
    return torch.rand(b, c, s, s) * 2 - 1


def _labels(b: int, k: int) -> torch.Tensor:
    return torch.arange(b) % k


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# ---------------------------------------------------------------- blocks


@pytest.mark.parametrize(("size", "expected"), [(32, (3, 4)), (28, (2, 7)), (64, (4, 4)), (16, (2, 4)), (8, (1, 4)),
                                                 (6, (1, 3)), (96, (5, 3)), (20, (2, 5))])
def test_pyramid_table(size, expected):
    assert pyramid(size) == expected


@pytest.mark.parametrize("size", [7, 4, 3, 1, 0, -8, 2.0, True])
def test_pyramid_refuses_sizes_that_do_not_halve(size):
    with pytest.raises(ModelError, match="expected"):
        pyramid(size)


def test_pyramid_error_message():
    with pytest.raises(ModelError, match=r"even image size .* got 7"):
        pyramid(7)


def test_norm2d_kinds():
    x = torch.randn(2, 6, 4, 4)
    assert isinstance(norm2d("batch", 6), nn.BatchNorm2d)
    inst = norm2d("instance", 6)
    assert isinstance(inst, nn.InstanceNorm2d) and inst.affine
    layer = norm2d("layer", 6)
    assert isinstance(layer, nn.GroupNorm) and layer.num_groups == 1
    assert isinstance(norm2d("none", 6), nn.Identity)
    for kind in ("batch", "instance", "layer", "none"):
        assert norm2d(kind, 6)(x).shape == x.shape
    with pytest.raises(ModelError, match="got 'group'"):
        norm2d("group", 6)


def test_dcgan_init_statistics():
    torch.manual_seed(0)
    m = dcgan_init(nn.Sequential(nn.Conv2d(64, 64, 4), nn.BatchNorm2d(512), nn.Linear(256, 256)))
    conv, bn, lin = m
    assert abs(conv.weight.std().item() - 0.02) < 2e-3 and abs(conv.weight.mean().item()) < 2e-3
    assert abs(lin.weight.std().item() - 0.02) < 2e-3
    assert abs(bn.weight.mean().item() - 1) < 5e-3 and abs(bn.weight.std().item() - 0.02) < 5e-3
    assert all(float(b.detach().abs().max()) == 0 for b in (conv.bias, bn.bias, lin.bias))


# ---------------------------------------------------------------- registry


@pytest.mark.parametrize(("name", "family"), [("conv_ae", "autoencoder"), ("vae", "autoencoder"), ("dcgan", "gan"),
                                              ("gan_mlp", "gan")])
def test_registry_entries(name, family):
    entry = MODELS.get(name)
    assert entry.task == "generate" and entry.family == family and entry.doc
    assert name in MODELS.list(task="generate")


def test_registry_builds_by_name():
    gan = MODELS.build("dcgan", z_dim=4, width=4, img_size=16)
    assert isinstance(gan, nn.ModuleDict) and set(gan) == {"G", "D"}
    assert (gan["G"].z_dim, gan["G"].num_classes, gan["G"].in_chans, gan["G"].img_size) == (4, 0, 1, 16)
    ae = MODELS.build("vae", in_chans=3, img_size=16, z_dim=5, width=4, num_classes=2)
    assert (ae.in_chans, ae.img_size, ae.z_dim, ae.num_classes, ae.variational) == (3, 16, 5, 2, True)
    assert MODELS.build("conv_ae", width=4).variational is False
    assert set(MODELS.build("gan_mlp", hidden=8)) == {"G", "D"}
    # One state dict rebuilds both networks.
    again = MODELS.build("dcgan", z_dim=4, width=4, img_size=16)
    again.load_state_dict(gan.state_dict())
    z = torch.randn(2, 4)
    gan.eval(), again.eval()
    torch.testing.assert_close(gan["G"](z), again["G"](z))


def test_default_parameter_counts():
    assert _n_params(MODELS.build("conv_ae")) == 411_377
    assert _n_params(MODELS.build("vae")) == 444_161
    gan = MODELS.build("dcgan")
    assert (_n_params(gan["G"]), _n_params(gan["D"])) == (984_641, 661_313)
    mlp = MODELS.build("gan_mlp")
    assert (_n_params(mlp["G"]), _n_params(mlp["D"])) == (345_600, 328_449)


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("conv_ae", {"img_size": 7}, "conv_ae: expected an even image size"),
    ("vae", {"z_dim": 0}, "vae: expected an integer z_dim >= 1, got 0"),
    ("vae", {"num_classes": -1}, "num_classes >= 0"),
    ("conv_ae", {"width": 2.5}, "width"),
    ("dcgan", {"img_size": 15}, "dcgan: expected an even image size"),
    ("dcgan", {"g_norm": "group"}, "g_norm in batch, instance, layer, none, got 'group'"),
    ("dcgan", {"d_norm": "spectral"}, "d_norm"),
    ("dcgan", {"in_chans": 0}, "in_chans"),
    ("gan_mlp", {"depth": -1}, "depth >= 0"),
    ("gan_mlp", {"hidden": 0}, "hidden >= 1"),
])
def test_builders_refuse_bad_arguments(name, kwargs, match):
    with pytest.raises(ModelError, match=match):
        MODELS.build(name, **kwargs)


# ---------------------------------------------------------------- shapes and ranges


@pytest.mark.parametrize("chans", [1, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["conv_ae", "vae"])
def test_autoencoder_shapes(name, size, chans):
    torch.manual_seed(0)
    ae = MODELS.build(name, in_chans=chans, img_size=size, **TINY[name])
    recon, mu, logvar = ae(_images(3, chans, size))
    assert recon.shape == (3, chans, size, size) and mu.shape == (3, 4)
    assert recon.abs().max() <= 1 and torch.isfinite(recon).all()
    assert (logvar is None) == (name == "conv_ae")
    if logvar is not None:
        assert logvar.shape == (3, 4)
    assert ae.decode(torch.randn(5, 4)).shape == (5, chans, size, size)


@pytest.mark.parametrize("chans", [1, 3])
@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("name", ["dcgan", "gan_mlp"])
def test_gan_shapes(name, size, chans):
    torch.manual_seed(0)
    gan = MODELS.build(name, in_chans=chans, img_size=size, **TINY[name])
    x = gan["G"](torch.randn(3, 4))
    assert x.shape == (3, chans, size, size) and x.abs().max() <= 1 and x.std() > 0
    score = gan["D"](x)
    assert score.shape == (3,) and torch.isfinite(score).all()
    assert gan["D"](_images(3, chans, size)).shape == (3,)


@pytest.mark.parametrize("norm", ["batch", "instance", "layer", "none"])
def test_dcgan_norms(norm):
    torch.manual_seed(0)
    gan = MODELS.build("dcgan", z_dim=4, width=4, img_size=16, g_norm=norm, d_norm=norm)
    x = gan["G"](torch.randn(2, 4))
    assert x.shape == (2, 1, 16, 16) and gan["D"](x).shape == (2,)
    kinds = {"batch": nn.BatchNorm2d, "instance": nn.InstanceNorm2d, "layer": nn.GroupNorm}
    if norm in kinds:
        assert any(isinstance(m, kinds[norm]) for m in gan["G"].modules())
        first = gan["D"].features[1]
        assert isinstance(first, nn.Identity)  # no norm on the critic's first block
        assert any(isinstance(m, kinds[norm]) for m in gan["D"].modules())


def test_dcgan_channel_layout_32px():
    gan = MODELS.build("dcgan", width=8, img_size=32)
    convt = [m for m in gan["G"].modules() if isinstance(m, nn.ConvTranspose2d)]
    assert [(m.in_channels, m.out_channels) for m in convt] == [(32, 16), (16, 8), (8, 8)]
    convs = [m for m in gan["D"].modules() if isinstance(m, nn.Conv2d)]
    assert [(m.in_channels, m.out_channels) for m in convs] == [(1, 8), (8, 16), (16, 32)]
    big = MODELS.build("dcgan", width=2, img_size=64)  # 4 stages, channels capped at 8 width
    assert [m.out_channels for m in big["D"].modules() if isinstance(m, nn.Conv2d)] == [2, 4, 8, 16]


@pytest.mark.parametrize("name", ["dcgan", "gan_mlp", "vae", "conv_ae"])
def test_wrong_shapes_raise_shape_errors(name):
    m = MODELS.build(name, img_size=16, **TINY[name])
    if isinstance(m, nn.ModuleDict):
        with pytest.raises(ShapeError, match="expected noise z"):
            m["G"](torch.randn(2, 5))
        with pytest.raises(ShapeError, match=r"expected images \(B, 1, 16, 16\)"):
            m["D"](torch.randn(2, 1, 32, 32))
    else:
        with pytest.raises(ShapeError, match=r"expected images"):
            m(torch.randn(2, 3, 16, 16))
        with pytest.raises(ShapeError, match=r"expected codes"):
            m.decode(torch.randn(2, 3))


# ---------------------------------------------------------------- conditioning


@pytest.mark.parametrize("name", ["dcgan", "gan_mlp"])
def test_conditional_gan(name):
    torch.manual_seed(0)
    gan = MODELS.build(name, num_classes=3, img_size=16, **TINY[name]).eval()
    G, D = gan["G"], gan["D"]
    z = torch.randn(4, 4)
    a, b = G(z, torch.zeros(4, dtype=torch.long)), G(z, torch.ones(4, dtype=torch.long))
    assert a.shape == (4, 1, 16, 16) and not torch.allclose(a, b)
    x = _images(4, 1, 16)
    assert not torch.allclose(D(x, torch.zeros(4, dtype=torch.long)), D(x, torch.full((4,), 2)))
    for net, inp in ((G, z), (D, x)):
        with pytest.raises(ModelError, match="conditional, num_classes=3"):
            net(inp)
        with pytest.raises(ShapeError, match="integer class labels"):
            net(inp, torch.zeros(3, dtype=torch.long))
        with pytest.raises(ShapeError, match="integer class labels"):
            net(inp, torch.zeros(4))
    plain = MODELS.build(name, img_size=16, **TINY[name])
    with pytest.raises(ModelError, match="unconditional"):
        plain["G"](z, _labels(4, 3))
    with pytest.raises(ModelError, match="unconditional"):
        plain["D"](x, _labels(4, 3))


def test_conditional_vae():
    torch.manual_seed(0)
    ae = MODELS.build("vae", num_classes=3, img_size=16, z_dim=4, width=4).eval()
    x, eps = _images(2, 1, 16), torch.zeros(2, 4)
    mu0, _ = ae.encode(x, torch.tensor([0, 0]))
    mu1, _ = ae.encode(x, torch.tensor([1, 1]))
    assert not torch.allclose(mu0, mu1)  # the class is an input of the encoder
    z = torch.randn(2, 4)
    assert not torch.allclose(ae.decode(z, torch.tensor([0, 0])), ae.decode(z, torch.tensor([2, 2])))
    recon, _, logvar = ae(x, torch.tensor([0, 2]), eps=eps)
    assert recon.shape == (2, 1, 16, 16) and logvar.shape == (2, 4)
    with pytest.raises(ModelError, match="conditional"):
        ae(x)
    with pytest.raises(ModelError, match="conditional"):
        ae.decode(z)
    plain = MODELS.build("vae", img_size=16, z_dim=4, width=4)
    with pytest.raises(ModelError, match="unconditional"):
        plain(x, torch.tensor([0, 1]))
    with pytest.raises(ModelError, match="unconditional"):
        MODELS.build("conv_ae", img_size=16, z_dim=4, width=4).decode(z, torch.tensor([0, 1]))


def test_vae_reparameterisation():
    torch.manual_seed(0)
    ae = MODELS.build("vae", img_size=16, z_dim=4, width=4).eval()
    x, eps = _images(2, 1, 16), torch.randn(2, 4)
    r1, mu, logvar = ae(x, eps=eps)
    r2, _, _ = ae(x, eps=eps)
    torch.testing.assert_close(r1, r2)  # a given eps: deterministic
    torch.testing.assert_close(r1, ae.decode(mu + torch.exp(0.5 * logvar) * eps))
    torch.testing.assert_close(ae(x, eps=torch.zeros(2, 4))[0], ae.decode(mu))
    r3, _, _ = ae(x)  # eps drawn: stochastic
    assert not torch.allclose(r1, r3)
    plain = MODELS.build("conv_ae", img_size=16, z_dim=4, width=4).eval()
    recon, mu, logvar = plain(x)
    assert logvar is None
    torch.testing.assert_close(recon, plain.decode(mu))
    torch.testing.assert_close(plain(x, eps=eps)[0], recon)  # eps is ignored without a variance


# ---------------------------------------------------------------- spectral norm


def _sn_modules(D: nn.Module) -> list[nn.Module]:
    return [m for m in D.modules() if isinstance(m, nn.Conv2d | nn.Linear | nn.Embedding)]


@pytest.mark.parametrize(("name", "kwargs"), [("dcgan", {"d_norm": "none"}), ("dcgan", {"d_norm": "layer"}),
                                              ("gan_mlp", {})])
def test_spectral_norm_on_every_critic_layer(name, kwargs):
    torch.manual_seed(0)
    gan = MODELS.build(name, img_size=16, num_classes=3, spectral_norm=True, **TINY[name], **kwargs)
    D, layers = gan["D"], _sn_modules(gan["D"])
    assert len(layers) >= (4 if name == "dcgan" else 3)
    assert all(parametrize.is_parametrized(m, "weight") for m in layers)
    assert not any(parametrize.is_parametrized(m) for m in gan["G"].modules())
    x, y = _images(4, 1, 16), _labels(4, 3)
    D.train()
    for _ in range(15):  # one power iteration per training forward
        D(x, y)
    D.eval()
    with torch.no_grad():
        sigmas = [torch.linalg.matrix_norm(m.weight.flatten(1), ord=2).item() for m in layers]
    assert all(abs(s - 1) < 0.05 for s in sigmas), sigmas
    plain = MODELS.build(name, img_size=16, num_classes=3, **TINY[name])
    assert not any(parametrize.is_parametrized(m) for m in plain["D"].modules())


# ---------------------------------------------------------------- gradients and a tiny overfit


@pytest.mark.parametrize("kwargs", [{}, {"num_classes": 3}, {"num_classes": 3, "spectral_norm": True, "d_norm": "none"},
                                    {"g_norm": "none"}, {"g_norm": "instance", "d_norm": "layer"}])
@pytest.mark.parametrize("name", ["dcgan", "gan_mlp"])
def test_gradient_reaches_every_generator_parameter_through_the_critic(name, kwargs):
    if name == "gan_mlp":
        kwargs = {k: v for k, v in kwargs.items() if not k.endswith("_norm")}
    torch.manual_seed(0)
    gan = MODELS.build(name, img_size=16, **TINY[name], **kwargs)
    G, D = gan["G"], gan["D"]
    y = _labels(6, 3) if kwargs.get("num_classes") else None
    score = D(G(torch.randn(6, 4), y), y)
    F.binary_cross_entropy_with_logits(score, torch.ones_like(score)).backward()
    dead = [n for n, p in G.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not dead, dead
    assert all(p.grad is not None for p in D.parameters())


@pytest.mark.parametrize("name", ["dcgan", "gan_mlp"])
def test_critic_overfits_a_fixed_batch(name):
    torch.manual_seed(0)
    gan = MODELS.build(name, img_size=16, **TINY[name])
    G, D = gan["G"], gan["D"]
    real, z = _images(8, 1, 16) * 0.5 + 0.5, torch.randn(8, 4)
    opt = torch.optim.Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999))

    def d_loss() -> torch.Tensor:
        fake = G(z).detach()
        s_real, s_fake = D(real), D(fake)
        return (F.binary_cross_entropy_with_logits(s_real, torch.ones_like(s_real))
                + F.binary_cross_entropy_with_logits(s_fake, torch.zeros_like(s_fake)))

    first = d_loss().item()
    for _ in range(30):
        opt.zero_grad()
        loss = d_loss()
        loss.backward()
        opt.step()
    assert loss.item() < 0.5 * first


@pytest.mark.parametrize("name", ["conv_ae", "vae"])
def test_autoencoder_overfits_a_fixed_batch(name):
    torch.manual_seed(0)
    ae = MODELS.build(name, img_size=16, z_dim=8, width=8)
    x = torch.tanh(torch.randn(4, 1, 16, 16))
    opt = torch.optim.Adam(ae.parameters(), lr=3e-3)
    eps = torch.zeros(4, 8)
    losses = []
    for _ in range(40):
        opt.zero_grad()
        recon, _, _ = ae(x, eps=eps)
        loss = F.mse_loss(recon, x)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.grad is not None for p in ae.parameters())


@pytest.mark.parametrize("name", ["dcgan", "gan_mlp"])
def test_critic_two_forwards_one_backward_and_gradient_penalty(name):
    # A GAN step scores real and fake before one backward (spectral norm updates its vectors in each training
    # forward); WGAN-GP differentiates the gradient norm (double backward).
    torch.manual_seed(0)
    kw = {"d_norm": "layer"} if name == "dcgan" else {}
    gan = MODELS.build(name, img_size=16, num_classes=3, spectral_norm=True, **TINY[name], **kw)
    G, D = gan["G"], gan["D"]
    y = _labels(4, 3)
    real, fake = _images(4, 1, 16), G(torch.randn(4, 4), y)
    (D(real, y).mean() - D(fake.detach(), y).mean()).backward()
    assert all(p.grad is not None for p in D.parameters())
    D.zero_grad()
    t = torch.rand(4, 1, 1, 1)
    mix = (t * real + (1 - t) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(D(mix, y).sum(), mix, create_graph=True)
    ((grad.flatten(1).norm(dim=1) - 1) ** 2).mean().backward()
    grads = {n: p.grad for n, p in D.named_parameters()}
    assert all(g is None or torch.isfinite(g).all() for g in grads.values())
    assert all(g is not None for n, g in grads.items() if "weight" in n or "original" in n), grads.keys()
