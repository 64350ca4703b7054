"""Config dataclasses -> CLI options: one option per leaf, real defaults in --help, precedence."""

from dataclasses import dataclass, field

import click
from click.testing import CliRunner

from vislab.cli.options import build_config, config_options
from vislab.core.config import opt
from vislab.engine.config import TrainConfig


@dataclass
class Section:
    size: int = opt(3, "a size")
    mode: str = opt("a", "a mode", choices=("a", "b"))


@dataclass
class Cfg:
    sec: Section = field(default_factory=Section)
    train: TrainConfig = field(default_factory=lambda: TrainConfig(epochs=42))


@click.command()
@config_options(Cfg)
def cmd(config_path, **options):
    cfg = build_config(Cfg, config_path, options)
    click.echo(f"{cfg.sec.size} {cfg.sec.mode} {cfg.train.epochs} {cfg.train.lr}")


def test_help_shows_the_task_defaults():
    out = CliRunner().invoke(cmd, ["--help"]).output
    assert "--epochs INTEGER" in out and "[default: 42]" in out  # the section factory's value, not TrainConfig's 10
    assert "[a|b]" in out


def test_precedence_defaults_file_options(tmp_path):
    (tmp_path / "c.yaml").write_text("sec: {size: 5, mode: b}\nepochs: 7\n")
    r = CliRunner().invoke(cmd, ["--config", str(tmp_path / "c.yaml"), "--size", "9"])
    assert r.exit_code == 0, r.output
    assert r.output.split() == ["9", "b", "7", "0.05"]
    r = CliRunner().invoke(cmd, [])
    assert r.output.split() == ["3", "a", "42", "0.05"]


def test_bad_choice_is_a_usage_error():
    r = CliRunner().invoke(cmd, ["--mode", "c"])
    assert r.exit_code == 2 and "'c' is not one of 'a', 'b'" in r.output


def test_usage_errors_are_one_line_naming_the_command(cli):
    for args, message in [(["classify", "train", "--lr", "abc"], "Invalid value for '--lr': 'abc' is not a valid float."),
                          (["classify", "train", "--epochz", "1"], "No such option '--epochz'. (Did you mean one of: '--epochs'"),
                          (["segment", "predict", "run"], "Missing argument 'INPUTS...'.")]:
        code, out, err = cli(*args)
        assert code == 2 and err.count("\n") == 1 and err.startswith("error: ") and message in err, err
        assert f"(see `vislab {args[0]} {args[1]} --help`)" in err


def test_a_yaml_key_spelt_out_in_words_finds_the_short_option(tmp_path, cli):
    (tmp_path / "run.yaml").write_text("lerning_rate: 0.1\n")
    code, out, err = cli("classify", "train", "--config", str(tmp_path / "run.yaml"))
    assert code == 2 and err.strip() == "error: unknown config key 'lerning_rate' (did you mean 'lr'?)"
