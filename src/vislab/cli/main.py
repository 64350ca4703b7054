"""Entry point: ``vislab [--debug] TASK MODE ...``; a VislabError becomes one line and exit code 2."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
import time
import warnings

STARTED = time.perf_counter()  # when the command started (the demo reports its wall time from here)

import click

import vislab

# The other command groups: (module, group name, one-line help) -- each module defines a click group called `group`.
# The task groups come from the task registry (vislab.tasks). Both are listed without importing anything heavy,
# so `vislab --help` stays fast: a group is built or imported only when it runs.
GROUPS: list[tuple[str, str, str]] = [
    ("vislab.cli.image", "image", "classical image processing: apply | ops | kernels | compare | flow | superpixels | proposals"),
    ("vislab.cli.models", "models", "the model zoo: list | show"),
    ("vislab.cli.data", "data", "datasets: preview | convert | validate | generate-detection | generate-identities"),
    ("vislab.cli.tune", "tune", "hyper-parameter search with Optuna, for any task"),
    ("vislab.cli.compare", "compare", "compare runs: one table and overlaid learning curves"),
]


class LazyGroup(click.Group):
    """The root group: task groups generated from the task registry, the others imported, both on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | {name for name, _ in self._rows()})

    @staticmethod
    def _available() -> list[tuple[str, str, str]]:
        return [g for g in GROUPS if importlib.util.find_spec(g[0]) is not None]

    def _rows(self) -> list[tuple[str, str]]:
        from vislab.tasks import task_entries

        return [(t.name, t.summary) for t in task_entries()] + [(name, help_) for _, name, help_ in self._available()]

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        cmd = super().get_command(ctx, name)
        if cmd is not None:
            return cmd
        from vislab.tasks import get_spec, task_names

        if name in task_names():
            from vislab.cli.tasks import task_group

            return task_group(get_spec(name))
        for module, gname, _ in self._available():
            if gname == name:
                return importlib.import_module(module).group
        return None

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = self._rows() + [(n, c.get_short_help_str(80)) for n, c in self.commands.items()]
        with formatter.section("Tasks and commands"):
            formatter.write_dl(sorted(rows))


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(vislab.__version__, "--version", "-V", prog_name="vislab")
@click.option("--debug", is_flag=True, help="show full tracebacks for errors")
@click.pass_context
def cli(ctx: click.Context, debug: bool) -> None:
    """vislab: deep-learning computer vision, one CLI for every task.

    Every TASK has its MODEs (`vislab classify train --help`). Runs are written to
    runs/<task>/<name>/ (config, metrics.csv, TensorBoard events, checkpoints/, report.html).
    """
    if debug:
        os.environ["VISLAB_DEBUG"] = "1"


def _register_builtin() -> None:
    from vislab.cli.demo import demo

    cli.add_command(demo)


def _one_line_warning(message, category, filename, lineno, line=None) -> str:
    return f"warning: {' '.join(str(message).split())}\n"


def main(argv: list[str] | None = None) -> None:
    """Run the CLI; exit 2 with one line for a VislabError (traceback with --debug)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv or os.environ.get("VISLAB_DEBUG") == "1"
    if not debug:  # a warning is one line, like an error (--debug keeps Python's file:line form)
        warnings.formatwarning = _one_line_warning
    _register_builtin()
    try:
        cli.main(args=argv, prog_name="vislab", standalone_mode=False)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except click.UsageError as e:  # one line, like every other error (click would print a three-line usage block)
        where = e.ctx.command_path if e.ctx is not None else "vislab"
        message = " ".join(e.format_message().split())
        click.echo(f"error: {message} (see `{where} --help`)", err=True)
        sys.exit(e.exit_code)
    except click.ClickException as e:
        e.show()
        sys.exit(e.exit_code)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except vislab.VislabError as e:
        if debug:
            raise
        click.echo(f"error: {e}", err=True)
        sys.exit(e.exit_code)
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
