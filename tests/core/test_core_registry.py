import pytest
from torch import nn

from vislab.core.errors import ModelError
from vislab.core.registry import Registry
from vislab.models.registry import create_model, list_models


def test_register_list_build():
    reg = Registry("thing")

    @reg.register(task="a")
    def alpha(k: int = 1):
        return k

    @reg.register(task="b")
    def beta():
        return 2

    assert reg.list() == ["alpha", "beta"]
    assert reg.list("al*") == ["alpha"]
    assert reg.list(task="b") == ["beta"]
    assert reg.build("alpha", k=5) == 5


def test_duplicate_name_raises():
    reg = Registry("thing")

    @reg.register
    def gamma():
        return 0

    with pytest.raises(ModelError, match="already registered"):
        reg.register(gamma)


def test_unknown_model_suggests():
    with pytest.raises(ModelError, match=r"unknown model 'lenet6'.*did you mean 'lenet5'"):
        create_model("lenet6")


def test_prefix_handler():
    reg = Registry("thing")
    reg.register_prefix("ext", lambda rest, **kw: (rest, kw))
    assert reg.build("ext:foo", a=1) == ("foo", {"a": 1})


def test_builtin_models_registered():
    names = list_models(task="classify")
    assert {"small_cnn", "lenet5"} <= set(names)
    m = create_model("small_cnn", num_classes=3, in_chans=1)
    assert isinstance(m, nn.Module) and m.num_classes == 3
