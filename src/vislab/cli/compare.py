"""``vislab compare RUN...``: one table and overlaid learning curves for runs of one task."""

from __future__ import annotations

import click


@click.command(name="compare", context_settings={"max_content_width": 110})
@click.argument("runs", nargs=-1, required=True)
@click.option("--out", default="", help="output folder for compare.csv/.md/.html/.json and curves.png [default: OUT/compare/<task>, beside the task's runs]")
@click.option("--sort", "sort_by", default="", help="sort the table by this column, e.g. test_acc, train_seconds")
def group(runs: tuple[str, ...], out: str, sort_by: str) -> None:
    """Compare RUNS (run folders of one task): final/best metrics, time, parameters, throughput, curves.

    \b
    Examples:
      vislab compare runs/classify/scratch runs/classify/linear runs/classify/full
      vislab compare runs/classify/* --sort test_acc --out cmp/
    """
    from pathlib import Path

    from vislab.report.compare import COLUMNS, compare_runs

    first = Path(runs[0]).expanduser()
    res = compare_runs(list(runs), out or first.parent.parent / "compare" / first.parent.name, sort_by=sort_by)
    shown = [c for c in COLUMNS if any(r.get(c) not in (None, "") for r in res["rows"])]
    try:
        from rich.console import Console
        from rich.table import Table

        t = Table(title=f"{len(res['rows'])} {res['task']} runs")
        for c in shown:
            t.add_column(c, justify="left" if c in ("run", "model", "finetune", "best_metric") else "right")
        for r in res["rows"]:
            t.add_row(*[_cell(r.get(c)) for c in shown])
        Console(width=200).print(t)
    except ImportError:  # pragma: no cover - rich is a dependency; plain text otherwise
        click.echo("\t".join(shown))
        for r in res["rows"]:
            click.echo("\t".join(_cell(r.get(c)) for c in shown))
    click.echo(f"written: {res['files']['csv']}, {res['files']['md']}, {res['files']['png']}, {res['files']['html']}")


def _cell(v) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    if isinstance(v, int) and v >= 10_000:
        return f"{v:,}"
    return str(v)
