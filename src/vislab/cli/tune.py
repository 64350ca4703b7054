"""``vislab tune SPACE.yaml``: an Optuna study over classification config fields."""

from __future__ import annotations

import click

from vislab.cli.options import config_options


def _tune_config():
    from vislab.recipes.tune import TuneConfig

    return TuneConfig


@click.command(name="tune", context_settings={"max_content_width": 110})
@click.argument("space", type=click.Path(dir_okay=False))
@config_options(_tune_config())
def group(space: str, config_path: str | None, **options) -> None:
    """Search hyper-parameters of `vislab TASK train` as described by SPACE (YAML: task, base, space, metric, trials, pruner).

    The study goes to OUT/tune/<name>/ (study.db, trials/<n>/, trials.csv, history.png, study.html, best.yaml).
    Running the same command again resumes the study and completes its trial count.

    \b
    Examples:
      vislab tune search.yaml                         # study runs/tune/search/
      vislab tune search.yaml --trials 20 --pruner hyperband
      vislab tune seg.yaml --task segment              # or `task: segment` in the YAML
      vislab classify train --config runs/tune/search/best.yaml
    """
    from vislab.core.errors import ConfigError
    from vislab.recipes import tune as T

    if config_path:
        raise ConfigError(f"vislab tune: expected the search YAML as the SPACE argument, got --config {config_path}")
    cfg = T.load_spec(space, options)
    res = T.tune(cfg, log=click.echo)
    click.echo(f"study: {res.study_dir} ({res.finished} finished trials, {res.pruned} pruned)")
    if res.best_trial is not None:
        params = " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in res.best_params.items())
        click.echo(f"best trial {res.best_trial}: {cfg.metric} {res.best_value:.4f}  {params}")
        click.echo(f"retrain: vislab {cfg.task} train --config {res.files['best']}")
    else:
        click.echo("no trial completed (all pruned): no best.yaml")
    click.echo("written: " + ", ".join(str(p) for k, p in res.files.items() if k not in ("db", "best")))
