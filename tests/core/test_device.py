import warnings

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


FP32_CPU = D.Precision("fp32", None, False, False, "cpu")
BF16_CPU = D.Precision("bf16", torch.bfloat16, True, False, "cpu")  # bf16 autocast goes with channels_last on CPU


@pytest.mark.parametrize("flags,fast", [
    ({"avx512f", "avx512_bf16"}, True), ({"amx_bf16", "amx_tile"}, True), ({"avx512f", "avx512bw", "avx512_vnni"}, False),
    ({"avx", "avx2", "fma"}, False), (set(), False),
])  # fmt: skip
def test_cpu_policy_is_exactly_what_the_flags_allow(monkeypatch, flags, fast):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset(flags))
    assert D.cpu_has_fast_bf16() is fast
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # auto never warns; bf16 on a CPU that has it neither
        assert D.resolve_precision("auto", torch.device("cpu")) == (BF16_CPU if fast else FP32_CPU)
        if fast:
            assert D.resolve_precision("bf16", torch.device("cpu")) == BF16_CPU
    if not fast:
        with pytest.warns(UserWarning, match="no AVX-512-BF16/AMX"):
            assert D.resolve_precision("bf16", torch.device("cpu")) == FP32_CPU


def test_auto_on_this_machine_follows_what_it_reports():
    """Unpatched: the flags this CPU reports decide, exactly (e.g. a CPU with no AVX-512 at all -> fp32)."""
    fast = bool({"avx512_bf16", "amx_bf16"} & D.cpu_flags())
    assert D.cpu_has_fast_bf16() is fast
    assert D.resolve_precision("auto", torch.device("cpu")) == (BF16_CPU if fast else FP32_CPU)


def test_bf16_falls_back_cleanly_without_support(monkeypatch):
    monkeypatch.setattr(D, "cpu_flags", lambda: frozenset())
    with pytest.warns(UserWarning, match="using fp32"):
        assert D.resolve_precision("bf16", torch.device("cpu")).name == "fp32"


def test_autocast_keeps_parameters_fp32():
    p = D.Precision("bf16", torch.bfloat16, True, False, "cpu")
    m = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2))
    x = torch.randn(2, 1, 5, 5)
    with p.autocast():
        y = m(x)
    assert y.dtype == torch.bfloat16  # CPU autocast runs the conv in bf16 and BatchNorm keeps its input's dtype
    assert all(t.dtype == torch.float32 for t in m.state_dict().values() if t.is_floating_point())
    with D.resolve_precision("fp32", torch.device("cpu")).autocast():  # fp32: no autocast at all
        assert m(x).dtype == torch.float32


def test_bad_names():
    with pytest.raises(ConfigError, match="expected one of"):
        D.resolve_precision("fp8", torch.device("cpu"))
    with pytest.raises(ConfigError, match="expected one of"):
        D.resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="CUDA"):
            D.resolve_device("cuda")
