"""Image-to-image models (pix2pix U-Net and PatchGAN, CycleGAN ResNet generator, SRCNN / SRResNet / EDSR, DnCNN, fast
style transfer) and tiled inference.

Tiny widths, one thread; the parameter counts build the reference sizes on the ``meta`` device (no memory, no time).
Counts at the reference settings, each derived from the reference's layer recipe:

* ``pix2pix_unet()`` (3 -> 3, width 64, 256 px, depth 8, batch norm): **54,413,955**, the count of pix2pix's
  ``UnetGenerator(3, 3, 8, ngf=64, norm_layer=BatchNorm2d)``. Every conv and transposed conv has ``bias=use_bias`` =
  False with batch norm -- the first down conv and the innermost down conv too, though no norm follows them -- except
  the outermost transposed conv (bias, 3). Down convs 19,532,800 + their 6 BNs 4,864; up convs 34,871,296 + bias 3 +
  their 7 BNs 4,992. (The brief's 54,414,019 is 64 more: a bias on the first conv, which the reference does not have.)
* ``patchgan()`` (6 in, batch norm): **2,768,705** = ``NLayerDiscriminator(6, 64, 3)``: conv 6->64 with bias 6,208;
  convs 64->128->256->512 without bias (BN follows) 2,752,512 + BNs 1,792; conv 512->1 with bias 8,193. The brief's
  2,769,601 adds 896 biases on the three normalised convs, which the reference leaves out. With 3 inputs and the
  reference's CycleGAN setting (instance norm, ``affine=False`` so no norm parameters, biases on every conv):
  **2,764,737** -- exactly the brief's 3-input number; 3 inputs with batch norm: 2,765,633.
* ``resnet_gen()`` (9 blocks, 3 -> 3, instance norm without affine, biases): **11,378,179** (the reference's).
* ``srresnet(scale=4)``: **1,547,350** (conv9 15,616 + 17 PReLUs; 16 blocks of 2 convs without bias + 2 BNs 73,856
  each; conv3 + BN 36,992; two x2 upsamplers 147,712 each; conv9 15,555). Implementations that keep biases before
  the BNs count 1,549,462.
* ``edsr(scale=2)``: **1,369,859** (the EDSR paper's 1.37M for the baseline); x4: 1,517,571.
* ``dncnn()`` (gray, depth 17): **556,097** (the paper's ~0.56M; 15 middle convs without bias + BN).
* ``transformer_net()`` (width 32, 5 blocks): 1,677,635 (the PyTorch example's 1,679,235 less its 1,600 conv biases
  before the norms); each extra style adds ``2 x 1,600`` norm parameters.
"""

from __future__ import annotations

import copy
from itertools import pairwise

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError, ShapeError
from vislab.models.registry import create_model, list_models
from vislab.models.translate.pix2pix import auto_depth
from vislab.models.translate.style import CondInstanceNorm
from vislab.models.translate.tiling import _spans, tiled

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py

NAMES = ["pix2pix_unet", "patchgan", "resnet_gen", "srcnn", "srresnet", "edsr", "dncnn", "transformer_net"]


def _images(b: int, c: int, h: int, w: int | None = None) -> torch.Tensor:
    return torch.rand(b, c, h, w or h) * 2 - 1


def _n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registry_lists_the_family():
    names = list_models(task="translate")
    assert set(NAMES) <= set(names)
    assert not set(NAMES) & set(list_models(task="classify"))


# ---------------------------------------------------------------- parameter counts (meta device: build only)

REFERENCE = {  # (name, kwargs) -> count; see the module docstring for each derivation
    ("pix2pix_unet", ()): 54_413_955,
    ("patchgan", ()): 2_768_705,
    ("patchgan", (("in_chans", 3), ("norm", "instance"))): 2_764_737,
    ("patchgan", (("in_chans", 3),)): 2_765_633,
    ("resnet_gen", ()): 11_378_179,
    ("srresnet", (("scale", 4),)): 1_547_350,
    ("edsr", (("scale", 2),)): 1_369_859,
    ("dncnn", ()): 556_097,
    ("transformer_net", ()): 1_677_635,
    ("transformer_net", (("num_styles", 3),)): 1_677_635 + 2 * 2 * 1_600,
}


@pytest.mark.parametrize(("name", "kwargs"), sorted(REFERENCE), ids=lambda v: v if isinstance(v, str) else str(dict(v)))
def test_parameter_counts_match_the_references(name, kwargs):
    with torch.device("meta"):
        model = create_model(name, **dict(kwargs))
    assert _n_params(model) == REFERENCE[(name, kwargs)]


def test_pix2pix_unet_default_is_the_papers_8_level_net():
    with torch.device("meta"):
        g = create_model("pix2pix_unet")
    assert g.depth == 8
    convs = [m for m in g.downs.modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [64, 128, 256, 512, 512, 512, 512, 512]
    assert all(c.bias is None for c in convs)
    assert sum(isinstance(m, nn.Dropout) for m in g.modules()) == 3


# ---------------------------------------------------------------- pix2pix U-Net


@pytest.mark.parametrize(("size", "depth"), [(256, 8), (512, 8), (128, 7), (32, 5), (16, 4), (96, 5), (6, 1), (7, 0)])
def test_auto_depth(size, depth):
    assert auto_depth(size) == depth


@pytest.mark.parametrize(("img_size", "cin", "cout", "hw"), [(16, 3, 3, (16, 16)), (32, 1, 2, (32, 64)),
                                                            (32, 3, 3, (96, 32)), (64, 6, 3, (64, 64))])
def test_pix2pix_unet_shapes_and_range(img_size, cin, cout, hw):
    torch.manual_seed(0)
    g = create_model("pix2pix_unet", in_chans=cin, out_chans=cout, img_size=img_size, width=4)
    y = g(_images(2, cin, *hw))  # train mode: batch norm on the batch, dropout on
    assert y.shape == (2, cout, *hw)
    assert y.abs().max() <= 1
    y.mean().backward()
    assert all(p.grad is not None for p in g.parameters())


def test_pix2pix_unet_explicit_depth_and_norms():
    for norm in ("instance", "layer", "none"):
        g = create_model("pix2pix_unet", img_size=32, depth=3, width=4, norm=norm, dropout=0.0)
        assert g.depth == 3 and g(_images(1, 3, 24, 40)).shape == (1, 3, 24, 40)
    with pytest.raises(ShapeError, match="divisible by 8"):
        g(_images(1, 3, 20, 40))


def test_pix2pix_unet_every_skip_carries_information():
    torch.manual_seed(0)
    g = create_model("pix2pix_unet", in_chans=1, out_chans=1, img_size=32, width=4).double().eval()
    x = _images(1, 1, 32).double()
    with torch.no_grad():
        y = g(x)
        # One input pixel changed: the output changes around it.
        x2 = x.clone()
        x2[0, 0, 10, 20] += 1.0
        assert (g(x2) - y)[0, 0, 8:13, 18:23].abs().min() > 0
        # Each decoder block but the innermost reads the encoder's output at its resolution (first half of its input
        # channels): cutting those weights changes the output.
        for i in range(g.depth - 1):
            cut = copy.deepcopy(g)
            up = cut.ups[i][1]
            skip_chans = up.in_channels // 2
            up.weight[:skip_chans] = 0
            assert (cut(x) - y).abs().max() > 1e-9, f"skip at level {i} carries nothing"


# ---------------------------------------------------------------- PatchGAN


@pytest.mark.parametrize(("n_layers", "size", "out"), [(3, 64, 6), (3, 256, 30), (2, 64, 14), (1, 32, 14)])
def test_patchgan_shapes(n_layers, size, out):
    d = create_model("patchgan", in_chans=6, width=4, n_layers=n_layers)
    assert d(_images(2, 6, size)).shape == (2, 1, out, out)


def test_patchgan_spectral_norm_outputs_raw_logits():
    d = create_model("patchgan", in_chans=3, width=4, spectral_norm=True, norm="none")
    assert sum(hasattr(m, "parametrizations") for m in d.modules()) == 5
    assert d(_images(2, 3, 32)).shape == (2, 1, 2, 2)


@pytest.mark.parametrize("norm", ["none", "batch"])
def test_patchgan_receptive_field_is_70(norm):
    torch.manual_seed(0)
    d = create_model("patchgan", in_chans=1, width=2, norm=norm).double().eval()
    assert d.receptive_field == 70
    x = torch.randn(1, 1, 128, 128, dtype=torch.float64, requires_grad=True)
    out = d(x)
    assert out.shape == (1, 1, 14, 14)
    out[0, 0, 7, 7].backward()
    seen = x.grad[0, 0] != 0
    rows, cols = seen.any(1).nonzero().flatten(), seen.any(0).nonzero().flatten()
    assert int(rows[-1] - rows[0]) + 1 == 70 and int(cols[-1] - cols[0]) + 1 == 70
    assert int(seen.sum()) == 70 * 70


# ---------------------------------------------------------------- CycleGAN ResNet generator


@pytest.mark.parametrize(("n_down", "norm", "hw"), [(2, "instance", (16, 16)), (2, "batch", (20, 28)),
                                                    (3, "none", (32, 16)), (0, "instance", (8, 8))])
def test_resnet_gen_shapes_and_range(n_down, norm, hw):
    torch.manual_seed(0)
    g = create_model("resnet_gen", in_chans=1, out_chans=3, width=4, n_blocks=2, n_down=n_down, norm=norm)
    y = g(_images(2, 1, *hw))
    assert y.shape == (2, 3, *hw) and y.abs().max() <= 1


def test_resnet_gen_rejects_sizes_it_cannot_take():
    g = create_model("resnet_gen", width=4, n_blocks=1)
    with pytest.raises(ShapeError, match="divisible by 4"):
        g(_images(1, 3, 18, 16))
    with pytest.raises(ShapeError, match=r"\(B, 3, H, W\)"):
        g(_images(1, 1, 16, 16))


# ---------------------------------------------------------------- super-resolution

SR_TINY = {"srcnn": {"n1": 4, "n2": 4}, "srresnet": {"width": 4, "n_blocks": 1}, "edsr": {"width": 4, "n_blocks": 1}}


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("name", sorted(SR_TINY))
def test_sr_output_sizes(name, scale):
    torch.manual_seed(0)
    for c, (h, w) in [(3, (8, 8)), (1, (7, 10))]:
        m = create_model(name, in_chans=c, scale=scale, **SR_TINY[name])
        assert m(_images(2, c, h, w)).shape == (2, c, h * scale, w * scale)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_srcnn_with_zero_convs_is_bicubic(scale):
    m = create_model("srcnn", scale=scale, n1=4, n2=4)
    with torch.no_grad():
        for p in m.body.parameters():
            p.zero_()
    x = _images(2, 3, 9, 11)
    assert torch.allclose(m(x), F.interpolate(x, scale_factor=scale, mode="bicubic", align_corners=False), atol=1e-6)


def test_sr_outputs_are_not_squashed():
    torch.manual_seed(0)
    m = create_model("edsr", width=4, n_blocks=1)
    with torch.no_grad():
        m.tail[-1].bias.fill_(3.0)
        assert m(_images(1, 3, 6)).min() > 1  # linear: no tanh at the end


# ---------------------------------------------------------------- DnCNN


def test_dncnn_shapes_and_identity_with_zero_last_conv():
    m = create_model("dncnn", in_chans=3, depth=5, width=4)
    x = _images(2, 3, 13, 17)
    assert m(x).shape == x.shape
    with torch.no_grad():
        m.net[-1].weight.zero_()
        m.net[-1].bias.zero_()
    assert torch.equal(m.eval()(x), x)
    assert create_model("dncnn", depth=2, width=4, norm="none")(_images(1, 1, 8)).shape == (1, 1, 8, 8)


# ---------------------------------------------------------------- fast style transfer


def _styled_net(num_styles: int) -> nn.Module:
    torch.manual_seed(0)
    net = create_model("transformer_net", width=4, n_blocks=1, num_styles=num_styles)
    with torch.no_grad():  # distinct styles (a fresh net starts every style at gamma 1, beta 0)
        for m in net.modules():
            if isinstance(m, CondInstanceNorm):
                m.weight.copy_(1 + 0.5 * torch.randn_like(m.weight))
                m.bias.copy_(0.5 * torch.randn_like(m.bias))
    return net.eval()


def test_transformer_net_shapes_and_single_style():
    net = create_model("transformer_net", width=4, n_blocks=2)
    assert net.num_styles == 1
    for hw in [(16, 16), (20, 28), (8, 12)]:
        y = net(_images(2, 3, *hw))
        assert y.shape == (2, 3, *hw) and y.abs().max() <= 1
    x = _images(1, 3, 16)
    assert torch.equal(net(x), net(x, 0))
    assert create_model("transformer_net", in_chans=1, width=4, n_blocks=0, upsample="bilinear")(
        _images(1, 1, 16)).shape == (1, 1, 16, 16)


def test_transformer_net_styles_indices_and_mixing():
    net = _styled_net(3)
    assert net.num_styles == 3
    x = _images(1, 3, 16).expand(2, -1, -1, -1)
    with torch.no_grad():
        y01 = net(x, torch.tensor([0, 1]))
        a, b = y01[0], y01[1]
        assert (a - b).abs().max() > 1e-3  # the same image in two styles
        assert torch.allclose(net(x, torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])), y01, atol=1e-6)  # one-hot == index
        mix = net(x[:1], torch.tensor([[0.5, 0.5, 0.0]]))[0]
        d_ab, d_ma, d_mb = (a - b).square().mean(), (mix - a).square().mean(), (mix - b).square().mean()
        assert 0 < d_ma < d_ab and 0 < d_mb < d_ab  # in between the two styles
    # At a norm the 50/50 mix is exactly halfway: gamma and beta are the weighted sums.
    norm = next(m for m in net.modules() if isinstance(m, CondInstanceNorm))
    h = torch.randn(1, norm.weight.shape[1], 5, 5)
    e0, e1, half = torch.tensor([[1.0, 0, 0]]), torch.tensor([[0, 1.0, 0]]), torch.tensor([[0.5, 0.5, 0]])
    assert torch.allclose(norm(h, half), (norm(h, e0) + norm(h, e1)) / 2, atol=1e-6)


def test_transformer_net_rejects_bad_styles_and_sizes():
    net = _styled_net(3)
    x = _images(2, 3, 16)
    with pytest.raises(ModelError, match="3-style network, got None"):
        net(x)
    with pytest.raises(ModelError, match=r"in \[0, 3\)"):
        net(x, torch.tensor([0, 3]))
    with pytest.raises(ShapeError, match="mixing weights"):
        net(x, torch.ones(2, 2))
    with pytest.raises(ShapeError, match="divisible by 4"):
        net(_images(2, 3, 18, 16), torch.tensor([0, 1]))


# ---------------------------------------------------------------- bad arguments


@pytest.mark.parametrize(("name", "kwargs", "match"), [
    ("srcnn", {"scale": 5}, r"scale in \{2, 3, 4\}, got 5"),
    ("srresnet", {"scale": 5}, "scale"),
    ("edsr", {"scale": 1}, "scale"),
    ("edsr", {"res_scale": 0}, "res_scale"),
    ("srcnn", {"f1": 4}, "odd kernel size f1"),
    ("pix2pix_unet", {"img_size": 7}, "even img_size"),
    ("pix2pix_unet", {"img_size": 48, "depth": 5}, "divisible by 2\\^depth = 32"),
    ("pix2pix_unet", {"dropout": 1.0}, "dropout"),
    ("pix2pix_unet", {"norm": "group"}, "norm in batch, instance, layer, none"),
    ("patchgan", {"n_layers": 0}, "n_layers >= 1"),
    ("resnet_gen", {"n_down": -1}, "n_down >= 0"),
    ("dncnn", {"depth": 1}, "depth >= 2"),
    ("transformer_net", {"upsample": "deconv"}, "upsample in nearest, bilinear"),
    ("transformer_net", {"num_styles": 0}, "num_styles >= 1"),
    *[(n, {"width": 0}, "expected an integer width >= 1, got 0") for n in NAMES if n != "srcnn"],
    ("srcnn", {"n1": 0}, "n1 >= 1"),
])
def test_bad_arguments_raise_model_error(name, kwargs, match):
    with pytest.raises(ModelError, match=match):
        create_model(name, **kwargs)


def test_bad_inputs_raise_shape_error():
    with pytest.raises(ShapeError, match="divisible by 16"):
        create_model("pix2pix_unet", img_size=16, width=4)(_images(1, 3, 24))
    with pytest.raises(ShapeError, match=r"\(B, 6, H, W\)"):
        create_model("patchgan", width=4)(_images(1, 3, 32))
    with pytest.raises(ShapeError, match="low-resolution"):
        create_model("edsr", width=4, n_blocks=1)(_images(1, 1, 8))


# ---------------------------------------------------------------- tiled inference


def _conv_stack(n: int, cin: int = 3, cout: int = 2) -> nn.Module:
    """``n`` 3x3 convs: receptive-field radius ``n``."""
    torch.manual_seed(0)
    layers: list[nn.Module] = [nn.Conv2d(cin, 4, 3, padding=1)]
    for _ in range(n - 2):
        layers += [nn.Tanh(), nn.Conv2d(4, 4, 3, padding=1)]
    layers += [nn.Tanh(), nn.Conv2d(4, cout, 3, padding=1)]
    return nn.Sequential(*layers).eval()


@pytest.mark.parametrize("hw", [(10, 12), (16, 16), (40, 40), (16, 64), (37, 53), (17, 100)])
def test_tiled_equals_whole_image_when_the_overlap_covers_the_receptive_field(hw):
    fn = _conv_stack(2)  # radius 2 = overlap // 2
    x = torch.randn(2, 3, *hw)
    shapes = []

    def call(t):
        shapes.append(tuple(t.shape[2:]))
        return fn(t)

    with torch.no_grad():
        y = tiled(call, x, tile=16, overlap=4)
        assert y.shape == (2, 2, *hw)
        assert torch.allclose(y, fn(x), atol=1e-5)
    assert len(set(shapes)) == 1  # every tile the same size
    assert shapes[0] == (min(hw[0], 16), min(hw[1], 16))
    n = (len(_spans(hw[0], 16, 4)), len(_spans(hw[1], 16, 4)))
    assert len(shapes) == n[0] * n[1]
    if hw == (10, 12):
        assert n == (1, 1)  # smaller than a tile: one call
    if hw == (40, 40):
        assert n == (3, 3)  # 16 + 12 + 12: an exact fit, no shifted tile


def test_tiled_spans_partition_and_keep_their_margins():
    for size in range(1, 80):
        spans = _spans(size, 16, 6)
        assert spans[0][1] == 0 and spans[-1][2] == size
        assert all(a[2] == b[1] for a, b in pairwise(spans))  # contiguous, no gaps
        for i, (s, lo, hi) in enumerate(spans):
            assert 0 <= s and s + min(size, 16) <= size  # inside the image
            assert i == 0 or lo - s >= 3
            assert i == len(spans) - 1 or s + 16 - hi >= 3


def test_tiled_super_resolution_scale_2():
    torch.manual_seed(0)
    m = create_model("edsr", scale=2, width=4, n_blocks=1).eval()  # radius 6 low-res px: overlap 12
    x = _images(2, 3, 37, 50)
    with torch.no_grad():
        y = tiled(m, x, tile=24, overlap=12, scale=2)
        assert y.shape == (2, 3, 74, 100)
        assert torch.allclose(y, m(x), atol=1e-5)


def test_tiled_differs_only_near_the_seams_when_the_receptive_field_is_larger():
    r, tile, overlap = 6, 16, 4
    fn = _conv_stack(r)
    x = torch.randn(1, 3, 45, 38)
    with torch.no_grad():
        y, ref = tiled(fn, x, tile=tile, overlap=overlap), fn(x)

    def exact(size: int) -> torch.Tensor:  # positions at least r from every tile edge that is not the image border
        ok = torch.zeros(size, dtype=torch.bool)
        spans = _spans(size, tile, overlap)
        for i, (s, lo, hi) in enumerate(spans):
            for p in range(lo, hi):
                ok[p] = (i == 0 or p - s >= r) and (i == len(spans) - 1 or s + tile - 1 - p >= r)
        return ok

    mask = exact(45)[:, None] & exact(38)[None, :]
    assert 0 < int(mask.sum()) < mask.numel()
    diff = (y - ref).abs()[0].amax(0)
    assert diff[mask].max() <= 1e-5
    assert diff[~mask].max() > 1e-4  # the seams do show: the check above is not vacuous


def test_tiled_validates_its_arguments():
    fn = _conv_stack(2)
    x = torch.randn(1, 3, 20, 20)
    with pytest.raises(ValueError, match="overlap < tile"):
        tiled(fn, x, tile=8, overlap=8)
    with pytest.raises(ModelError, match="even overlap"):
        tiled(fn, x, tile=8, overlap=3)
    with pytest.raises(ModelError, match="overlap >= 0"):
        tiled(fn, x, tile=8, overlap=-2)
    with pytest.raises(ModelError, match="tile >= 1"):
        tiled(fn, x, tile=0, overlap=0)
    with pytest.raises(ShapeError, match=r"images \(B, C, H, W\)"):
        tiled(fn, x[0], tile=8, overlap=2)
    with pytest.raises(ShapeError, match="scale=2"):
        tiled(fn, x, tile=8, overlap=2, scale=2)
