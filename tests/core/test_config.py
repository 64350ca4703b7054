from dataclasses import dataclass, field

import pytest

from vislab.core import config as C
from vislab.core.config import opt
from vislab.core.errors import ConfigError
from vislab.tasks.classify import ClassifyConfig


@dataclass
class Inner:
    lr: float = opt(0.1, "learning rate")
    optimizer: str = opt("sgd", "opt", choices=("sgd", "adam"))
    flag: bool = opt(False, "a flag")
    sizes: list[int] = opt([1, 2], "sizes")


@dataclass
class Outer:
    inner: Inner = field(default_factory=Inner)
    epochs: int = opt(3, "epochs")


def test_defaults_are_the_dataclass():
    cfg = C.from_dict(Outer, {})
    assert cfg.inner.lr == 0.1 and cfg.epochs == 3 and cfg.inner.sizes == [1, 2]


def test_nested_and_flat_keys_and_coercion():
    cfg = C.from_dict(Outer, {"inner": {"lr": "0.5", "flag": "yes"}, "epochs": "7", "sizes": "4,5"})
    assert (cfg.inner.lr, cfg.inner.flag, cfg.epochs, cfg.inner.sizes) == (0.5, True, 7, [4, 5])
    assert C.from_dict(Outer, {"lr": 2}).inner.lr == 2.0


def test_unknown_key_suggests():
    with pytest.raises(ConfigError, match=r"unknown config key 'epoch'.*did you mean 'epochs'"):
        C.from_dict(Outer, {"epoch": 3})


def test_wrong_type_and_choice_say_expected_and_got():
    with pytest.raises(ConfigError, match=r"'epochs': expected int, got 'many'"):
        C.from_dict(Outer, {"epochs": "many"})
    with pytest.raises(ConfigError, match=r"expected one of sgd, adam, got 'adma'.*did you mean 'adam'"):
        C.from_dict(Outer, {"optimizer": "adma"})
    with pytest.raises(ConfigError, match="expected int"):
        C.from_dict(Outer, {"epochs": 2.5})


def test_yaml_then_overrides(tmp_path):
    p = tmp_path / "run.yaml"
    p.write_text("train:\n  lr: 0.2\n  epochs: 4\nmodel: lenet5\n")
    cfg = C.resolve(ClassifyConfig, p, {"lr": 0.3})
    assert cfg.train.lr == 0.3 and cfg.train.epochs == 4 and cfg.model.model == "lenet5"
    assert cfg.data.data == "digits"  # untouched default


def test_yaml_errors(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        C.load_yaml(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("a: [1, 2\n")
    with pytest.raises(ConfigError, match="valid YAML"):
        C.load_yaml(bad)
    lst = tmp_path / "list.yaml"
    lst.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        C.load_yaml(lst)


def test_round_trip_through_yaml(tmp_path):
    cfg = C.from_dict(ClassifyConfig, {"lr": 0.01, "model": "lenet5", "augment": "none"})
    C.save_yaml(cfg, tmp_path / "c.yaml")
    assert C.resolve(ClassifyConfig, tmp_path / "c.yaml") == cfg


def test_every_leaf_has_help_and_unique_name():
    leaves = C.leaves(ClassifyConfig)
    assert len({leaf.name for leaf in leaves}) == len(leaves)
    assert all(leaf.help for leaf in leaves)
