"""Each task's command group, generated from its :class:`~vislab.tasks.base.TaskSpec`: ``train``, one command per
mode (its config's ``cli=False`` fields are the positional arguments, every other field an option), and
``lr-find`` for tasks with one optimizer. What a command prints comes from the spec; nothing here knows a task.
"""

from __future__ import annotations

import dataclasses
import typing

import click

from vislab.cli.options import build_config, config_options, typed_options
from vislab.core.progress import PROGRESS_HELP

WIDE = {"max_content_width": 110}


def task_group(spec) -> click.Group:
    """The click group ``vislab <spec.name> ...``."""
    group = click.Group(name=spec.name, help=spec.help)
    group.add_command(_train_command(spec))
    for mode in spec.modes:
        group.add_command(_mode_command(spec, mode))
    if spec.lr_find:
        group.add_command(_lr_find_command(spec))
    return group


def _train_command(spec) -> click.Command:
    def train(config_path: str | None, **options) -> None:
        from vislab.core.dist import env_info
        from vislab.engine.launch import resolve_run_config
        from vislab.tasks.base import train as run

        cfg = resolve_run_config(spec.config, config_path, typed_options(options))
        run_dir = run(spec, cfg)
        if env_info().is_main:  # under torchrun every rank returns here; one summary is enough
            _print_train_summary(spec, run_dir)

    return click.command(name="train", help=spec.train_help, context_settings=WIDE)(config_options(spec.config)(train))


def _print_train_summary(spec, run_dir) -> None:
    import json

    summary = json.loads((run_dir / "run.json").read_text()).get("summary", {})
    click.echo(spec.summary(summary))
    click.echo(f"run folder: {run_dir}")
    for name in spec.report_files:
        if (run_dir / name).exists():
            click.echo(f"  {run_dir / name}")


def _arguments(cfg_cls: type) -> list[tuple[str, bool]]:
    """``(name, takes several values)`` of the config's positional arguments (its fields with ``cli=False``)."""
    hints = typing.get_type_hints(cfg_cls)
    return [(f.name, typing.get_origin(hints[f.name]) in (list, tuple)) for f in dataclasses.fields(cfg_cls) if not f.metadata.get("cli", True)]


def _mode_command(spec, mode) -> click.Command:
    args = _arguments(mode.config)

    def command(config_path: str | None, progress: str, **options) -> None:
        from vislab.core.progress import set_command_mode

        set_command_mode(progress)
        positional = {name: list(options.pop(name)) if many else options.pop(name) for name, many in args}
        cfg = build_config(mode.config, config_path, {**options, **positional})
        for line in mode.show(cfg, mode.run(cfg)):
            click.echo(line)

    f = config_options(mode.config)(command)
    f = click.option("--progress", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True, help=PROGRESS_HELP)(f)
    optional = {f.name for f in dataclasses.fields(mode.config) if f.metadata.get("optional")}
    for name, many in reversed(args):
        f = click.argument(name, nargs=-1 if many else 1, required=name not in optional)(f)
    return click.command(name=mode.name, help=mode.help, context_settings=WIDE)(f)


def _lr_find_command(spec) -> click.Command:
    def lr_find(lr_steps: int, start_lr: float, end_lr: float, plot_path: str, config_path: str | None, **options) -> None:
        from vislab.engine.launch import resolve_run_config
        from vislab.recipes.lr_finder import lr_find as run

        cfg = resolve_run_config(spec.config, config_path, typed_options(options))
        res = run(spec, cfg, steps=lr_steps, start_lr=start_lr, end_lr=end_lr, out=plot_path or None)
        how = "steepest descent of the smoothed loss" if res.steepest_lr is not None else "min-loss lr / 10"
        click.echo(f"swept {len(res.lrs)} steps, lr {res.lrs[0]:.2e} .. {res.lrs[-1]:.2e}{' (stopped: loss diverged)' if res.diverged else ''}")
        click.echo(f"suggested --lr {res.suggestion:.3g} ({how}); min loss at lr {res.min_loss_lr:.3g}")
        click.echo(f"written: {res.files['png']}, {res.files['csv']}")

    f = config_options(spec.config)(lr_find)
    f = click.option("--plot", "plot_path", default="", help=f"where to write the plot (and .csv beside it) [default: OUT/lr-find/{spec.name}/lr_find.png]")(f)
    f = click.option("--end-lr", type=float, default=10.0, show_default=True, help="last learning rate of the sweep (stops earlier when the loss diverges)")(f)
    f = click.option("--start-lr", type=float, default=1e-6, show_default=True, help="first learning rate of the sweep")(f)
    f = click.option("--steps", "lr_steps", type=int, default=100, show_default=True, help="optimizer steps of the sweep")(f)
    help_ = f"""Learning-rate range test: train a copy of the model while the lr grows exponentially; suggest an --lr.

    Uses the same data, model, weights, optimizer, batch size and augmentation as `{spec.name} train`.

    \\b
    Examples:
      vislab {spec.name} lr-find
      vislab {spec.name} lr-find --config run.yaml --optimizer adamw --steps 200 --plot lr.png
    """
    return click.command(name="lr-find", help=help_, context_settings=WIDE)(f)

