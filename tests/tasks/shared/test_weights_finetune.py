"""Weight loading: torchvision / timm state dicts reproduce their models; key reports; safe loading; offline tags."""

from __future__ import annotations

import pickle

import pytest
import timm
import torch
import torchvision
from safetensors.torch import save_file

from vislab.core.errors import CheckpointError
from vislab.models.registry import create_model
from vislab.tasks.shared import weights as W
from vislab.tasks.shared.finetune import FinetunePlan, layer_groups


def test_torchvision_state_dict_reproduces_outputs(tmp_path):
    torch.manual_seed(0)
    tv = torchvision.models.resnet18(num_classes=5).eval()
    torch.save(tv.state_dict(), tmp_path / "tv.pth")
    m = create_model("resnet18", num_classes=5, stem="imagenet").eval()
    rep = W.load_into(m, W.read_weights(tmp_path / "tv.pth"))
    assert not rep.missing and not rep.unexpected and not rep.reshaped and not rep.head_reset
    assert rep.renamed == {"fc.": "head."}
    x = torch.randn(2, 3, 37, 45)
    with torch.no_grad():
        torch.testing.assert_close(m(x), tv(x), atol=1e-5, rtol=0)


def test_timm_safetensors_reproduces_outputs_and_head_is_replaced(tmp_path):
    torch.manual_seed(0)
    src = timm.create_model("resnet10t", num_classes=6).eval()
    save_file(src.state_dict(), str(tmp_path / "model.safetensors"), metadata={"mean": "[0.5, 0.4, 0.3]", "std": "[0.2, 0.2, 0.2]"})
    w = W.read_weights(tmp_path / "model.safetensors")
    assert w.mean == (0.5, 0.4, 0.3) and w.std == (0.2, 0.2, 0.2)
    m = create_model("timm:resnet10t", num_classes=6).eval()
    rep = W.load_into(m, w)
    assert rep.renamed == {"": "model."} and not rep.missing and not rep.unexpected
    x = torch.randn(2, 3, 33, 29)
    with torch.no_grad():
        torch.testing.assert_close(m(x), src(x), atol=1e-5, rtol=0)
    m3 = create_model("timm:resnet10t", num_classes=3).eval()  # new class count: head left as initialised
    rep3 = W.load_into(m3, w)
    assert rep3.head_reset and not rep3.missing and m3(x).shape == (2, 3)
    with torch.no_grad():
        torch.testing.assert_close(m3.forward_features(x), src.forward_features(x), atol=1e-5, rtol=0)


def test_report_lists_missing_unexpected_reshaped(tmp_path):
    src = create_model("small_cnn", num_classes=4, width=8).state_dict()
    src["extra.weight"] = torch.zeros(3)
    src["features.6.0.weight"] = torch.zeros(1, 1, 3, 3)  # another shape
    del src["features.1.1.running_mean"]
    torch.save({"state_dict": src, "mean": [0.1, 0.2, 0.3], "std": [0.3, 0.3, 0.3]}, tmp_path / "w.pt")
    w = W.read_weights(tmp_path / "w.pt")
    assert w.mean == (0.1, 0.2, 0.3)
    m = create_model("small_cnn", num_classes=4, width=8)
    rep = W.load_into(m, w)
    assert rep.unexpected == ["extra.weight"]
    assert rep.reshaped == ["features.6.0.weight: (1, 1, 3, 3) -> (32, 16, 3, 3)"]
    assert rep.missing == ["features.1.1.running_mean", "features.6.0.weight"]
    assert any("1 unexpected" in line for line in rep.lines())


def test_unsafe_pickle_and_foreign_weights_are_refused(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"w": Evil()}))
    with pytest.raises(CheckpointError, match=r"refused '.*evil.pth': it is a pickle that needs code execution to load; vislab loads only "
                                              r"safetensors or weights-only checkpoints. If you trust the file, convert it once"):
        W.read_weights(tmp_path / "evil.pth")
    (tmp_path / "junk.pth").write_bytes(b"\x00not a pickle at all")
    with pytest.raises(CheckpointError, match="got an unreadable file"):
        W.read_weights(tmp_path / "junk.pth")
    torch.save({"foo.bar": torch.zeros(2)}, tmp_path / "foreign.pth")
    with pytest.raises(CheckpointError, match="none that fit"):
        W.load_into(create_model("small_cnn", num_classes=2, width=8), W.read_weights(tmp_path / "foreign.pth"))
    with pytest.raises(CheckpointError, match="not found"):
        W.read_weights(tmp_path / "nope.pth")


def test_pretrained_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torch.hub, "_hub_dir", None, raising=False)
    with pytest.raises(CheckpointError, match="expected cached weights .* pass --weights PATH"):
        W.resolve_pretrained("resnet18")
    # a cached file is used without network
    tv = torchvision.models.resnet18()
    wt = torchvision.models.ResNet18_Weights.IMAGENET1K_V1
    cache = tmp_path / "hub" / "checkpoints"
    cache.mkdir(parents=True)
    torch.save(tv.state_dict(), cache / wt.url.rsplit("/", 1)[1])
    w = W.resolve_pretrained("resnet18.IMAGENET1K_V1")
    assert w.mean == (0.485, 0.456, 0.406) and len(w.tensors) == len(tv.state_dict())


def test_layer_groups_and_gradual_schedule():
    m = create_model("resnet18", num_classes=3, stem="cifar")
    groups = layer_groups(m)
    assert [n for n, _ in groups] == ["stage0", "stage1", "stage2", "stage3", "head"]
    assert sum(len(ps) for _, ps in groups) == len(list(m.parameters()))
    assert groups[0][1][0][0] == "conv1.weight" and groups[-1][1][0][0] == "head.weight"
    plan = FinetunePlan(m, "gradual", layer_decay=0.5, unfreeze_every=2)
    trainable = []
    for epoch in range(10):
        plan.set_epoch(epoch)
        trainable.append([any(p.requires_grad for _, p in ps) for _, ps in groups].count(True))
    assert trainable == [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]
    scales = {g["name"]: g["lr_scale"] for g in plan.param_groups(m, 1e-4)}
    assert scales == {"head": 1.0, "stage3": 0.5, "stage2": 0.25, "stage1": 0.125, "stage0": 0.0625}
    # frozen BatchNorm keeps its statistics in train mode
    plan.set_epoch(0)
    bn = m.layer1[0].bn1
    before = bn.running_mean.clone()
    m.train()
    m(torch.randn(4, 3, 16, 16))
    torch.testing.assert_close(bn.running_mean, before)


def test_refused_pickle_is_one_line_without_torch_warnings(tmp_path, cli):
    class Evil:
        def __reduce__(self):
            return (print, ("pwned",))

    (tmp_path / "evil.pth").write_bytes(pickle.dumps({"w": Evil()}, protocol=4))
    code, out, err = cli("classify", "train", "--weights", str(tmp_path / "evil.pth"), "--out", str(tmp_path), "--epochs", "1")
    assert code == 2 and err.count("\n") == 1 and "needs code execution" in err and "UserWarning" not in err and "pwned" not in out
    assert not (tmp_path / "classify").exists() or not any((tmp_path / "classify").iterdir())
