"""Video models over the registry: shapes, backward, time-reversal (in)variance, torchvision key compatibility, CAM layers."""

from __future__ import annotations

import pytest
import torch
import torchvision.models.video as tv_video

from vislab.core.errors import ModelError, ShapeError
from vislab.models import create_model, list_models
from vislab.models.registry import MODELS

VIDEO = list_models(task="video")
TORCHVISION = ("r3d_18", "r2plus1d_18", "mc3_18")
B, K, T, S = 2, 5, 8, 32  # batch, classes, frames, pixels

pytestmark = pytest.mark.usefixtures("one_thread")  # tests/conftest.py


def _small(name: str) -> dict:
    """Tiny configurations: narrow backbones, few hidden units."""
    if name == "c3d":
        return {"width": 8}
    if name in TORCHVISION:
        return {}
    kw: dict = {"backbone_args": {"width": 8}}
    if name.startswith("cnn_"):
        kw["hidden"] = 16
    return kw


def _run(model, x: torch.Tensor) -> torch.Tensor:
    if model.needs_flow:
        flow = torch.randn(x.shape[0], 2, x.shape[2] - 1, *x.shape[3:])
        return model(x, flow)
    return model(x)


def test_registry_lists_the_video_models():
    assert {"framewise", "cnn_rnn", "cnn_gru", "cnn_lstm", "c3d", *TORCHVISION, "two_stream"} <= set(VIDEO)
    assert not set(VIDEO) & set(list_models(task="classify"))
    assert all(len(MODELS.get(n).meta["input_size"]) == 4 for n in VIDEO)


@pytest.mark.parametrize("name", VIDEO)
def test_forward_backward_shape_and_interface(name):
    torch.manual_seed(0)
    assert MODELS.get(name).task == "video"
    m = create_model(name, num_classes=K, **_small(name))
    assert isinstance(m.per_frame, bool) and isinstance(m.needs_flow, bool) and isinstance(m.cam_layer, str)
    assert m.needs_flow == (name == "two_stream") and not m.per_frame
    y = _run(m, torch.randn(B, 3, T, S, S))
    assert y.shape == (B, K) and torch.isfinite(y).all()
    y.square().mean().backward()
    missing = [n for n, p in m.named_parameters() if p.requires_grad and p.grad is None]
    assert not missing, missing[:5]


@pytest.mark.parametrize("name", VIDEO)
def test_one_input_channel(name):
    m = create_model(name, num_classes=K, in_chans=1, **_small(name)).eval()
    with torch.no_grad():
        assert _run(m, torch.randn(1, 1, 4 if name != "two_stream" else T, S, S)).shape == (1, K)


def test_framewise_is_blind_to_time_reversal_cnn_rnn_and_c3d_are_not():
    torch.manual_seed(0)
    x = torch.randn(B, 3, T, S, S)
    for pool in ("mean", "max"):
        m = create_model("framewise", num_classes=K, pool=pool, backbone_args={"width": 8}).eval()
        with torch.no_grad():
            assert torch.allclose(m(x), m(x.flip(2)), atol=1e-5)
    for name, kw in [("cnn_rnn", {"backbone_args": {"width": 8}, "hidden": 16}), ("c3d", {"width": 8})]:
        m = create_model(name, num_classes=K, **kw).eval()
        with torch.no_grad():
            assert (m(x) - m(x.flip(2))).abs().max() > 1e-4, name


@pytest.mark.parametrize("cell", ["gru", "lstm"])
def test_cnn_rnn_many_to_many_and_bidirectional(cell):
    torch.manual_seed(0)
    x = torch.randn(B, 3, T, S, S)
    kw = {"backbone_args": {"width": 8}, "hidden": 16, "cell": cell}
    m2m = create_model("cnn_rnn", num_classes=K, many_to_many=True, **kw)
    assert m2m.per_frame and m2m(x).shape == (B, K, T)
    bi = create_model("cnn_rnn", num_classes=K, bidirectional=True, num_layers=2, **kw)
    y = bi(x)
    assert y.shape == (B, K) and not bi.per_frame
    y.sum().backward()
    assert create_model("cnn_rnn", num_classes=K, bidirectional=True, many_to_many=True, **kw)(x).shape == (B, K, T)
    alias = create_model(f"cnn_{cell}", num_classes=K, **{k: v for k, v in kw.items() if k != "cell"})
    assert isinstance(alias.rnn, torch.nn.GRU if cell == "gru" else torch.nn.LSTM)


def test_cnn_rnn_and_framewise_bad_choices_raise():
    with pytest.raises(ModelError, match="expected one of gru, lstm"):
        create_model("cnn_rnn", cell="rnn")
    with pytest.raises(ModelError, match="expected one of mean, max"):
        create_model("framewise", pool="sum")
    with pytest.raises(ModelError, match="set them on the video model"):
        create_model("framewise", backbone_args={"in_chans": 1})


def test_c3d_works_on_a_16x112x112_clip():
    m = create_model("c3d", num_classes=K, width=4).eval()
    with torch.no_grad():
        assert m(torch.randn(1, 3, 16, 112, 112)).shape == (1, K)
        assert m.forward_features(torch.randn(1, 3, 16, 112, 112)).shape == (1, 32, 4, 14, 14)
    with pytest.raises(ShapeError, match=r"\(B, C, T, H, W\)"):
        m(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("name", TORCHVISION)
def test_torchvision_video_resnets_keep_the_keys_small_input_and_in_chans(name):
    reference = getattr(tv_video, name)(weights=None).state_dict()
    m = create_model(name, num_classes=K)
    assert isinstance(m, tv_video.VideoResNet)
    assert list(m.state_dict()) == list(reference)
    no_fc = {k: v for k, v in reference.items() if not k.startswith("fc.")}
    assert not m.load_state_dict(no_fc, strict=False).unexpected_keys  # a Kinetics state dict loads by key
    small = create_model(name, num_classes=K, in_chans=1, small_input=True).eval()
    assert list(small.state_dict()) == list(reference) and small.stem[0].stride == (1, 1, 1)
    assert small.stem[0].kernel_size == reference["stem.0.weight"].shape[2:] and small.stem[0].in_channels == 1
    with torch.no_grad():
        feats = {}
        small.layer4.register_forward_hook(lambda _m, _i, o: feats.__setitem__("layer4", o))
        assert small(torch.randn(1, 1, 4, S, S)).shape == (1, K)
        assert feats["layer4"].shape[-2:] == (S // 8, S // 8)  # the stem no longer halves H, W


def test_two_stream_fusions_stream_logits_and_clip_length():
    torch.manual_seed(0)
    x, flow = torch.randn(B, 3, T, S, S), torch.randn(B, 2, T - 1, S, S)
    for fusion in ("late", "mid"):
        m = create_model("two_stream", num_classes=K, clip_len=T, fusion=fusion, backbone_args={"width": 8})
        y = m(x, flow)
        assert y.shape == (B, K)
        rgb, motion = m.stream_logits(x, flow)
        assert rgb.shape == motion.shape == (B, K)
        m.eval()
        with torch.no_grad():  # the same through forward (what a DistributedDataParallel wrapper calls)
            rgb2, motion2, fused = m(x, flow, streams=True)  # one pass gives every head's logits
            assert torch.equal(rgb2, m.stream_logits(x, flow)[0]) and torch.equal(motion2, m.stream_logits(x, flow)[1])
            assert torch.equal(fused, m(x, flow))
        m.train()
        (y.sum() + rgb.sum() + motion.sum()).backward()
        if fusion == "late":  # log-probabilities: each row's exp sums to <= 1 (geometric mean of two distributions)
            assert (y.exp().sum(1) <= 1 + 1e-5).all()
    with pytest.raises(ShapeError, match="clip_len=8"):
        m(torch.randn(B, 3, 6, S, S), torch.randn(B, 2, 5, S, S))
    with pytest.raises(ShapeError, match="flow"):
        m(x, torch.randn(B, 2, T, S, S))
    with pytest.raises(ModelError, match="fusion"):
        create_model("two_stream", fusion="early")
    with pytest.raises(ModelError, match="clip_len"):
        create_model("two_stream", clip_len=1)


@pytest.mark.parametrize("name", VIDEO)
def test_cam_layer_is_a_module_with_a_5d_or_4d_output(name):
    m = create_model(name, num_classes=K, **_small(name)).eval()
    modules = dict(m.named_modules())
    assert m.cam_layer in modules, m.cam_layer
    out = {}
    modules[m.cam_layer].register_forward_hook(lambda _m, _i, o: out.__setitem__("o", o))
    with torch.no_grad():
        _run(m, torch.randn(1, 3, T, S, S))
    three_d = name == "c3d" or name in TORCHVISION
    assert out["o"].ndim == (5 if three_d else 4), (name, tuple(out["o"].shape))
    if not three_d:
        assert m.cam_layer.startswith("backbone.")
        assert out["o"].shape[0] == (1 if name == "two_stream" else T)  # B * T frames (two-stream: the middle frame)


def test_resnet_backbone_gets_the_cifar_stem_and_layer4_as_cam_layer():
    m = create_model("framewise", num_classes=K, backbone="resnet18")
    assert m.cam_layer == "backbone.layer4" and m.backbone.stem == "cifar"  # small frames: cifar stem by default
    with torch.no_grad():
        assert m.eval()(torch.randn(1, 3, 2, 16, 16)).shape == (1, K)


def test_grid_pooled_frame_features_keep_where_things_are():
    from vislab.models.video.common import build_backbone, frame_features, frame_grid

    small, lenet = build_backbone("small_cnn", None, 3), build_backbone("lenet5", None, 3)
    assert frame_grid(small, 4) == 4 and frame_grid(lenet, 4) == 1  # LeNet's fully connected pre-logits stay in use
    x = torch.zeros(1, 3, 2, 32, 32)
    x[:, :, 0, :, :8] = 1.0  # frame 0: a bar on the left; frame 1: the same bar on the right
    x[:, :, 1, :, -8:] = 1.0
    small.eval()
    f1, f4 = frame_features(small, x, 1), frame_features(small, x, 4)
    assert f4.shape == (1, 2, small.num_features * 16)
    assert (f4[0, 0] - f4[0, 1]).abs().max() > 4 * (f1[0, 0] - f1[0, 1]).abs().max()  # position survives the grid, not the global pool
    m = MODELS.build("cnn_gru", num_classes=3, backbone="lenet5", grid=4)
    assert m.grid == 1 and m(torch.randn(2, 3, 4, 32, 32)).shape == (2, 3)


def test_models_show_and_list_know_video_models(cli):
    code, out, err = cli("models", "show", "c3d", "--depth", "1")
    assert code == 0, err
    assert "c3d (video) at input 1x3x16x112x112" in out and "features" in out  # the registered (C, T, H, W)
    code, out, err = cli("models", "list", "--task", "video")
    assert code == 0 and all(n in out for n in ("c3d", "r2plus1d_18", "cnn_gru", "two_stream", "framewise")), out
    code, out, err = cli("models", "show", "two_stream")
    assert code == 2 and "takes optical flow beside its clip" in err


@pytest.mark.parametrize("name", ["c3d", "r3d_18", "cnn_gru", "framewise"])
def test_video_models_take_the_channels_last_layout_the_precision_policy_asks_for(name):
    # bf16 + channels_last is the CPU policy on AVX-512-BF16 / AMX machines (and AMP's on CUDA): 5-D weights need
    # channels_last_3d, which plain `model.to(memory_format=torch.channels_last)` refuses
    from vislab.core.device import channels_last_for

    kw = {"small_input": True} if name == "r3d_18" else {}
    m = MODELS.build(name, num_classes=3, **kw).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        ref = m(x)
        m = m.to(memory_format=channels_last_for(m))
        torch.testing.assert_close(m(x), ref, atol=1e-4, rtol=1e-4)
