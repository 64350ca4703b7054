import pytest
import torch

from vislab.core import device as D
from vislab.core.errors import ConfigError


def test_fp32_policy():
    p = D.resolve_precision("fp32", torch.device("cpu"))
    assert (p.name, p.dtype, p.channels_last, p.scaler) == ("fp32", None, False, False)


def test_auto_on_cpu_follows_bf16_support(monkeypatch):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset({"avx512f", "avx512_bf16"}))
    p = D.resolve_precision("auto", torch.device("cpu"))
    assert (p.name, p.dtype, p.channels_last) == ("bf16", torch.bfloat16, True)
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset({"avx2"}))
    assert D.resolve_precision("auto", torch.device("cpu")).name == "fp32"


def test_bf16_falls_back_cleanly_without_support(monkeypatch):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset())
    with pytest.warns(UserWarning, match="using fp32"):
        assert D.resolve_precision("bf16", torch.device("cpu")).name == "fp32"


def test_autocast_keeps_parameters_fp32():
    p = D.Precision("bf16", torch.bfloat16, True, False, "cpu")
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    with p.autocast():
        y = m(torch.randn(2, 1, 5, 5))
    assert y.dtype in (torch.bfloat16, torch.float32)
    assert all(t.dtype == torch.float32 for t in m.state_dict().values() if t.is_floating_point())


def test_bad_names():
    with pytest.raises(ConfigError, match="expected one of"):
        D.resolve_precision("fp8", torch.device("cpu"))
    with pytest.raises(ConfigError, match="expected one of"):
        D.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            D.resolve_device("cuda")
