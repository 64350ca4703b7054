"""The CLI's task groups are generated from the task registry: every task, every mode, help everywhere, fast root help."""

from __future__ import annotations

import subprocess
import sys

import pytest

from vislab.tasks import get_spec, task_entries, task_names


def test_root_help_lists_every_task_without_importing_torch():
    code = ("import sys; from vislab.cli.main import main\n"
            "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'vislab --help imported torch'")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for t in task_entries():
        assert f"{t.name} " in out.stdout and t.summary[:40] in out.stdout


@pytest.mark.parametrize("name", task_names())
def test_summary_names_exactly_the_commands_of_the_spec(name):
    spec = get_spec(name)
    entry = next(t for t in task_entries() if t.name == name)
    listed = [m.strip() for m in entry.summary.split(":", 1)[1].split("|")]
    assert listed == ["train", *(m.name for m in spec.modes), *(["lr-find"] if spec.lr_find else [])]


@pytest.mark.parametrize("row", __import__("vislab.cli.main", fromlist=["GROUPS"]).GROUPS, ids=lambda r: r[1])
def test_root_help_of_the_other_groups_names_every_command(row):
    import importlib

    import click

    module, name, help_ = row
    group = importlib.import_module(module).group
    if isinstance(group, click.Group):  # a group's line lists all of its commands
        assert sorted(c.strip() for c in help_.split(":", 1)[1].split("|")) == sorted(group.commands), name


@pytest.mark.parametrize("name", task_names())
def test_every_command_has_help(cli, name):
    spec = get_spec(name)
    code, out, _ = cli(name, "--help")
    assert code == 0 and spec.help[:30] in out
    for cmd in ["train", *(m.name for m in spec.modes), *(["lr-find"] if spec.lr_find else [])]:
        code, out, err = cli(name, cmd, "--help")
        assert code == 0 and "Usage: vislab" in out and "--config" in out, (cmd, err)
    code, out, _ = cli(name, "train", "--help")
    assert "--epochs" in out and "--resume" in out and "Examples:" in out


def test_mode_arguments_come_from_the_config(cli, tmp_path):
    code, out, err = cli("classify", "predict", "--help")
    assert "CHECKPOINT INPUTS..." in out
    code, out, err = cli("classify", "predict", str(tmp_path))  # INPUTS missing
    assert code == 2 and "Missing argument 'INPUTS...'" in err
    code, out, err = cli("detect", "import", "--help")
    assert "WEIGHTS" in out and "--classes" in out


def test_unknown_task_suggests_one(cli):
    from vislab.core.errors import ConfigError

    with pytest.raises(ConfigError, match="did you mean 'segment'"):
        get_spec("segmnt")
    code, out, err = cli("segmnt", "train")
    assert code == 2 and "No such command 'segmnt'" in err
