"""Gatys style transfer and texture synthesis (vislab.tasks.style.gatys) and its feature networks
(vislab.tasks.shared.features): the losses fall by measured factors, colour is kept, sizes and layers are checked,
VGG files reproduce torchvision, ``auto`` falls back to the random network, a classify run serves as a backbone.

The bars are measured on the synthetic images below with the random network (one CPU thread) and set with a
margin; losses are recomputed here with the library's loss functions, independent of the optimiser's bookkeeping.
"""

from __future__ import annotations

import math

import pytest
import torch

from vislab.core.errors import ConfigError, DataError
from vislab.tasks.shared import features as F
from vislab.tasks.style import gatys

pytestmark = pytest.mark.usefixtures("one_thread")


def content_image(h: int = 48, w: int = 56) -> torch.Tensor:
    """A smooth colour scene: a gradient, a red disk and a blue box, (1, 3, h, w) in [-1, 1]."""
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    img = torch.stack([0.3 + 0.4 * xx, 0.2 + 0.3 * yy, -0.4 + 0.2 * (xx + yy)])
    disk = ((xx + 0.3) ** 2 + (yy + 0.2) ** 2) < 0.35**2
    img[:, disk] = torch.tensor([0.7, -0.5, -0.4]).view(3, 1)
    box = (xx > 0.2) & (xx < 0.7) & (yy > 0.1) & (yy < 0.8)
    img[:, box] = torch.tensor([-0.4, -0.2, 0.6]).view(3, 1)
    return img[None].clamp(-1, 1)


def style_image(h: int = 48, w: int = 48, seed: int = 1) -> torch.Tensor:
    """A two-colour diagonal stripe texture (period 6 px) with noise, (1, 3, h, w) in [-1, 1]."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.arange(h).float(), torch.arange(w).float(), indexing="ij")
    s = torch.sin((xx + yy) * 2 * math.pi / 6)
    c1, c2 = torch.tensor([0.9, 0.7, -0.8]).view(3, 1, 1), torch.tensor([-0.7, 0.1, 0.6]).view(3, 1, 1)
    return (torch.where(s > 0, c1, c2) + 0.15 * torch.randn(3, h, w, generator=g))[None].clamp(-1, 1)


@pytest.fixture(scope="module")
def net() -> F.FeatureNet:
    return F.load_feature_net("random")


def losses(net: F.FeatureNet, x: torch.Tensor, content: torch.Tensor, style: torch.Tensor) -> tuple[float, float]:
    """(style loss, content loss) of ``x`` with the library's default layers and unnormalised relative losses."""
    with torch.no_grad():
        st = {k: F.gram(v) for k, v in net(style, net.default_style).items()}
        ct = net(content, net.default_content)
        fx = net(x, net.default_content + net.default_style)
        return float(F.style_loss(fx, st)), float(F.content_loss(fx, ct))


# --------------------------------------------------------------------------------------------
# transfer and texture
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("optimizer", "steps"), [("lbfgs", 60), ("adam", 60)])
def test_transfer_moves_the_style_statistics_and_keeps_the_content(net, optimizer, steps):
    """Bars: the Gram (style) loss of the result <= 1/5 of the content image's, and its content loss <= 0.85 x that of
    the style image itself (an image with the style's statistics and none of the content). Measured (60 steps each,
    48x56 content, 48x48 style resized to the content's area, 52x52): lbfgs / adam style 11.1x / 10.1x lower, content
    0.57 / 0.60 of the style image's; over random-network seeds 0-2 and style seeds 1-2: 11-13x / 6.4-12x, 0.49-0.61."""
    content, style = content_image(), style_image()
    r = gatys.transfer(content, style, net, steps=steps, optimizer=optimizer, progress="off")
    assert r.image.shape == (1, 3, 48, 56) and r.image.min() >= -1 and r.image.max() <= 1
    assert len(r.history) >= steps and set(r.history[0]) == {"step", "style", "content", "tv", "total"}
    style_r = F.resize_to(style, (52, 52))  # the style at the content's area, its own aspect (what transfer uses)
    s_content, _ = losses(net, content, content, style_r)
    s_result, c_result = losses(net, r.image, content, style_r)
    _, c_style = losses(net, F.resize_to(style, (48, 56)), content, style_r)
    assert s_result <= s_content / 5, (s_content, s_result)
    assert c_result <= 0.85 * c_style, (c_result, c_style)
    # the result's own numbers: normalised so that the content image's style loss is 1
    assert r.style_loss_start == pytest.approx(1.0, rel=1e-4) and r.style_loss_end <= 0.2
    assert r.content_loss_end == pytest.approx(c_result / c_style, rel=1e-3) and r.seconds > 0 and "resized from 48 x 48 to 52 x 52" in r.note


def test_texture_from_noise_matches_the_gram_matrices(net):
    """Bar: the Gram loss of the synthesised texture <= 1/8 of the noise it starts from (measured 60 L-BFGS steps,
    40x40 from a 40x40 style: 22x lower; 9.4-22x over random-network seeds 0-2)."""
    style = style_image(40, 40)
    r = gatys.texture(style, net, steps=60, progress="off")
    assert r.image.shape == (1, 3, 40, 40)
    assert r.style_loss_end <= r.style_loss_start / 8, (r.style_loss_start, r.style_loss_end)
    noise = gatys._noise((1, 3, 40, 40), 0, torch.device("cpu"))
    s_noise, _ = losses(net, noise, style, style)
    s_tex, _ = losses(net, r.image, style, style)
    assert s_tex <= s_noise / 8, (s_noise, s_tex)
    bigger = gatys.texture(style, net, size=(40, 64), steps=2, progress="off")
    assert bigger.image.shape == (1, 3, 40, 64)


def test_same_seed_same_result_other_seed_other_result(net):
    content, style = content_image(32, 32), style_image(32, 32)
    a = gatys.transfer(content, style, net, steps=6, init="noise", seed=3, progress="off")
    b = gatys.transfer(content, style, net, steps=6, init="noise", seed=3, progress="off")
    c = gatys.transfer(content, style, net, steps=6, init="noise", seed=4, progress="off")
    assert torch.equal(a.image, b.image) and a.history == b.history
    assert not torch.equal(a.image, c.image)
    again = F.load_feature_net("random")
    assert all(torch.equal(p, q) for p, q in zip(net.state_dict().values(), again.state_dict().values(), strict=True))


def test_callback_sees_every_step_and_can_stop(net):
    seen = []
    r = gatys.transfer(content_image(32, 32), style_image(32, 32), net, steps=20, optimizer="adam", progress="off",
                       callback=lambda step, img, rec: seen.append((step, tuple(img.shape), rec["total"])) or step == 5)
    assert [s for s, _, _ in seen] == [1, 2, 3, 4, 5] and seen[0][1] == (1, 3, 32, 32) and len(r.history) == 5


# --------------------------------------------------------------------------------------------
# colour
# --------------------------------------------------------------------------------------------
def test_preserve_color_keeps_the_content_chroma(net):
    """Luminance-only transfer: Cb / Cr of the result equal the content's wherever no RGB channel was clipped to
    [-1, 1] (max abs difference <= 1e-3; measured 1e-4 on the 98.5% unclipped pixels), <= 0.005 on average over all
    pixels (measured 0.0004), while the luma changed (measured mean |dY| 0.15)."""
    content, style = content_image(), style_image()
    r = gatys.transfer(content, style, net, steps=20, preserve_color=True, progress="off")
    got, want = gatys.rgb_to_ycbcr(r.image), gatys.rgb_to_ycbcr(content)
    inside = (r.image.abs() < 0.995).all(1, keepdim=True).expand(-1, 2, -1, -1)
    assert inside.float().mean() >= 0.9
    assert (got[:, 1:] - want[:, 1:]).abs()[inside].max() <= 1e-3 and (got[:, 1:] - want[:, 1:]).abs().mean() <= 0.005
    assert (got[:, :1] - want[:, :1]).abs().mean() >= 0.02  # the luma was restyled
    plain = gatys.transfer(content, style, net, steps=20, progress="off")
    assert (gatys.rgb_to_ycbcr(plain.image)[:, 1:] - want[:, 1:]).abs().mean() > 0.05  # without it the chroma moves


def test_preserve_color_refuses_a_gray_style(net):
    gray = style_image().mean(1, keepdim=True)
    for style in (gray, gray.repeat(1, 3, 1, 1)):
        with pytest.raises(ConfigError, match=r"^--preserve-color: expected a colour style image, got a grayscale one \('gray.png'\)"):
            gatys.transfer(content_image(), style, net, steps=1, preserve_color=True, style_name="gray.png", progress="off")
    # without it, a gray style is fine (and a gray content gets a colour result)
    r = gatys.transfer(content_image().mean(1, keepdim=True), style_image(), net, steps=1, progress="off")
    assert r.image.shape == (1, 3, 48, 56)


# --------------------------------------------------------------------------------------------
# sizes and layers
# --------------------------------------------------------------------------------------------
def test_too_small_images_and_unknown_layers(net):
    assert F.min_size(net, ["relu5_1"]) == 32 and F.min_size(net, ["relu1_1", "relu3_1"]) == 8
    with pytest.raises(DataError, match=r"^content image: expected at least 32 x 32 pixels for layer relu5_1 \(1/16 of the image\), got 24 x 40$"):
        gatys.transfer(content_image(24, 40), style_image(), net, steps=1, progress="off")
    r = gatys.transfer(content_image(24, 40), style_image(), net, steps=1, content_layers="relu3_1", style_layers=["relu1_1", "relu3_1"],
                       progress="off")  # shallower layers: fine at that size
    assert r.image.shape == (1, 3, 24, 40)
    with pytest.raises(DataError, match=r"^style image \(resized to the content's area\): expected at least 32 x 32 pixels for layer relu5_1"):
        gatys.transfer(content_image(64, 64), style_image(16, 256), net, steps=1, progress="off")
    with pytest.raises(ConfigError, match=r"^--style-layers: expected a layer of random \(conv1_1, relu1_1, .*relu4_2.*\), got 'relu9_1'"):
        gatys.transfer(content_image(), style_image(), net, steps=1, style_layers=["relu1_1", "relu9_1"], progress="off")
    with pytest.raises(ConfigError, match="--optimizer: expected one of lbfgs, adam, got 'sgd'"):
        gatys.transfer(content_image(), style_image(), net, steps=1, optimizer="sgd", progress="off")
    feats = net(content_image(), ["relu2_1", "relu1_1"])
    assert list(feats) == ["relu2_1", "relu1_1"] and feats["relu2_1"].shape == (1, 64, 24, 28)
    assert net.strides["pool2"] == 4 and net.layers[:5] == ["conv1_1", "relu1_1", "conv1_2", "relu1_2", "pool1"]
    assert not any(p.requires_grad for p in net.parameters()) and not net.training


# --------------------------------------------------------------------------------------------
# VGG files, auto
# --------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def vgg19_file(tmp_path_factory):
    """torchvision's VGG-19 conv stack, randomly initialised (seed 0), saved as a features-only state dict."""
    from torchvision.models.vgg import cfgs, make_layers

    torch.manual_seed(0)
    features = make_layers(cfgs["E"]).eval()
    path = tmp_path_factory.mktemp("vgg") / "vgg19-features.pth"
    torch.save({f"features.{k}": v for k, v in features.state_dict().items()}, path)
    return path, features


def test_vgg19_file_reproduces_torchvision(vgg19_file, tmp_path):
    path, features = vgg19_file
    net = F.load_feature_net(f"vgg19:{path}", pool="max")
    assert net.name == f"vgg19:{path}" and net.pretrained and net.default_content == ["relu4_2"]
    assert net.default_style == ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"] and net.strides["relu4_1"] == 8
    x = torch.rand(1, 3, 40, 48, generator=torch.Generator().manual_seed(0)) * 2 - 1
    mean, std = torch.tensor(F.IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(F.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        want = features[:21](((x + 1) / 2 - mean) / std)  # torchvision's features.20 is relu4_1
        got = net(x, ["relu4_1"])["relu4_1"]
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    gray = net(x[:, :1], ["relu1_1"])["relu1_1"]  # one channel: repeated to three
    torch.testing.assert_close(gray, net(x[:, :1].repeat(1, 3, 1, 1), ["relu1_1"])["relu1_1"])
    avg = F.load_feature_net(f"vgg19:{path}")  # Gatys' average pooling: the same convs
    assert isinstance(avg.body[4], torch.nn.AvgPool2d) and torch.equal(avg.body[0].weight, net.body[0].weight)

    from safetensors.torch import save_file

    st = tmp_path / "vgg19.safetensors"
    save_file({k: v.contiguous() for k, v in features.state_dict().items()}, str(st))  # bare 0.weight ... keys
    torch.testing.assert_close(F.load_feature_net(f"vgg19:{st}", pool="max")(x, ["relu4_1"])["relu4_1"], want, rtol=1e-4, atol=1e-5)


def test_vgg_files_that_do_not_fit(vgg19_file, tmp_path):
    path, features = vgg19_file
    sd = {f"features.{k}": v for k, v in features.state_dict().items() if k != "10.weight"}
    sd["classifier.0.weight"] = torch.zeros(2, 2)
    bad = tmp_path / "bad.pth"
    torch.save(sd, bad)
    with pytest.raises(DataError, match=r"expected a torchvision vgg19 state dict with features\.\* tensors, got one without features\.10\.weight$"):
        F.load_feature_net(f"vgg19:{bad}")
    with pytest.raises(DataError, match=r"got one without features\.17\.weight"):  # a VGG-19 file is not a VGG-16 one
        F.load_feature_net(f"vgg16:{path}")
    with pytest.raises(DataError, match="not found"):
        F.load_feature_net(f"vgg19:{tmp_path / 'nothing.pth'}")
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(DataError, match=r"^--features vgg19:.*junk\.pth: expected"):
        F.load_feature_net(f"vgg19:{junk}")
    with pytest.raises(ConfigError, match=r"^--features: expected vgg19:FILE, vgg16:FILE, auto, random or a vislab classify run"):
        F.load_feature_net("no/such/run")


def test_auto_falls_back_to_the_random_network_and_finds_hub_weights(vgg19_file, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    net = F.load_feature_net("auto")
    where = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert net.name == "random" and not net.pretrained
    assert net.note == (f"no VGG-19 weights found at {where}: using a randomly initialised multi-scale network (results show texture "
                        "statistics, not learned features); pass --features vgg19:FILE")
    r = gatys.transfer(content_image(32, 32), style_image(32, 32), net, steps=1, progress="off")
    assert r.note.startswith("no VGG-19 weights found")
    where.parent.mkdir(parents=True)
    where.symlink_to(vgg19_file[0])
    found = F.load_feature_net("auto")
    assert found.name == f"vgg19:{where}" and found.pretrained and found.note == ""


# --------------------------------------------------------------------------------------------
# a classify run as the backbone
# --------------------------------------------------------------------------------------------
def test_a_classify_run_is_a_backbone(tmp_path):
    """A tiny small_cnn checkpoint (written directly): its stage outputs are the layers, its mean / std normalise, and
    transfer in its features lowers the style loss (measured 30 L-BFGS steps: ~30x; bar 5x)."""
    from vislab.engine import checkpoint as ckpt
    from vislab.models.registry import create_model

    torch.manual_seed(0)
    args = {"num_classes": 3, "width": 8}
    model = create_model("small_cnn", **args).eval()
    run = tmp_path / "run"
    ckpt.save(run / "checkpoints" / "best.safetensors", model, {"task": "classify", "model": "small_cnn", "model_args": args,
                                                                  "mean": [0.4, 0.5, 0.6], "std": [0.2, 0.25, 0.3], "img_size": [32, 32],
                                                                  "channels": 3})
    net = F.load_feature_net(str(run))
    assert net.name == f"classify:{run}" and net.pretrained
    assert net.layers == list(model.feature_modules) == ["features.1", "features.4", "features.6"]
    assert net.strides == {"features.1": 1, "features.4": 2, "features.6": 4} and net.default_content == ["features.4"]
    assert net.default_style == net.layers and F.min_size(net, net.layers) == 8
    x = content_image(32, 32)
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1), torch.tensor([0.2, 0.25, 0.3]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = model.feature_pyramid(((x + 1) / 2 - mean) / std)
        got = net(x, net.layers)
    for a, b in zip(got.values(), want, strict=True):
        torch.testing.assert_close(a, b)
    r = gatys.transfer(x, style_image(32, 32), net, steps=30, progress="off")
    assert r.style_loss_end <= r.style_loss_start / 5, (r.style_loss_start, r.style_loss_end)
    with pytest.raises(ConfigError, match=r"expected a layer of classify:.*\(features\.1, features\.4, features\.6\), got 'relu4_2'"):
        gatys.transfer(x, x, net, steps=1, progress="off", content_layers=["relu4_2"])


def test_gray_images_give_three_channel_results(net):
    gray_c, gray_s = content_image().mean(1, keepdim=True), style_image().mean(1, keepdim=True)
    r = gatys.transfer(gray_c, gray_s, net, steps=2, progress="off")
    assert r.image.shape == (1, 3, 48, 56) and gatys.is_gray(r.image)
    r = gatys.transfer(gray_c, style_image(), net, steps=2, preserve_color=True, progress="off")
    assert r.image.shape == (1, 3, 48, 56) and gatys.is_gray(r.image)  # a gray content has no colour to keep
    t = gatys.texture(gray_s, net, steps=2, progress="off")
    assert t.image.shape == (1, 3, 48, 48)


def test_a_gray_classify_run_takes_colour_images_as_luma(tmp_path):
    from vislab.engine import checkpoint as ckpt
    from vislab.models.registry import create_model

    torch.manual_seed(0)
    args = {"num_classes": 3, "in_chans": 1}
    model = create_model("lenet5", **args).eval()
    path = ckpt.save(tmp_path / "lenet.safetensors", model, {"task": "classify", "model": "lenet5", "model_args": args, "mean": [0.5],
                                                             "std": [0.3], "img_size": [32, 32], "channels": 1})
    net = F.load_feature_net(str(path))
    assert net.in_chans == 1 and net.layers == ["features.1", "features.4", "features.5"] and F.min_size(net, net.layers) == 20
    x = content_image(32, 32)
    y = (((x + 1) / 2) * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
    with torch.no_grad():
        torch.testing.assert_close(net(x, ["features.5"])["features.5"], model.feature_pyramid((y - 0.5) / 0.3)[-1])
    with pytest.raises(DataError, match=r"^content image: expected at least 20 x 20 pixels for layer features\.5 \(1/6 of the image\), got 16 x 16$"):
        gatys.transfer(content_image(16, 16), style_image(32, 32), net, steps=1, progress="off")
