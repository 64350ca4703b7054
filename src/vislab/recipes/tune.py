"""Hyper-parameter search over any task's training config with Optuna (TPE, pruning, SQLite storage).

A search is described by a mapping (usually a YAML file)::

    task: classify         # classify (default), segment, detect, ... (`vislab --help` lists the tasks)
    base: {data: digits, img_size: 16, epochs: 3}      # config keys fixed for every trial (flat or nested)
    space:                                             # config leaf names -> distributions
      lr: {type: float, low: 1e-3, high: 0.3, log: true}
      optimizer: {type: categorical, choices: [sgd, adamw]}
      batch_size: {type: int, low: 16, high: 64, step: 16}
    metric: val_acc        # maximised; names with "loss" / "error" are minimised (default: the task's monitor)
    trials: 8              # finished (complete + pruned) trials wanted
    pruner: median         # median | hyperband | none | {type: threshold, lower: 0.5} | {type: median, n_warmup_steps: 1}

The study lives in ``<out>/tune/<name>/``: ``study.db`` (SQLite; running the same search again resumes it
and completes its trial count), ``trials/<n>/`` (each trial's run folder), ``trials.csv``, ``history.png``,
``importances.png``, ``study.html`` and ``best.yaml`` (a config for ``vislab <task> train --config``).
"""

from __future__ import annotations

import dataclasses
import html
import inspect
import json
import math
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vislab.core import config as C
from vislab.core.config import opt
from vislab.core.errors import ConfigError, TrainingError, did_you_mean
from vislab.core.io import atomic_write_text

DIST_TYPES = ("float", "int", "categorical")
PRUNERS = ("median", "hyperband", "threshold", "percentile", "none")
SPEC_KEYS = ("task", "base", "space", "metric", "trials", "pruner", "direction", "seed", "name", "out", "n_jobs")
# Trials run quietly unless the base config says otherwise; best.yaml keeps the normal defaults.
TRIAL_DEFAULTS = {"progress": "off", "tensorboard": False, "report": False}


@dataclass
class TuneConfig:
    """``vislab tune SPACE.yaml``: how the study runs (``base`` and ``space`` come from the YAML)."""

    task: str = opt("classify", "the task whose training config is searched (classify, segment, detect, ...)")
    name: str = opt("", "study name: the folder <out>/tune/<name>/ (default: the YAML file's stem); the same name resumes")
    out: str = opt("runs", "root folder; the study goes to OUT/tune/<name>/")
    trials: int = opt(8, "finished trials (complete + pruned) the study should hold")
    metric: str = opt("auto", "metric to optimise: an epoch column (val_acc, val_loss, train_loss, ...) or a final one (test_acc); auto: the task's monitor (val_acc, val_miou, val_map)")
    direction: str = opt("auto", "maximize or minimize the metric (auto: minimize names with loss/error)", choices=("auto", "maximize", "minimize"))
    pruner: str = opt("median", "stop unpromising trials early from their epoch metrics", choices=PRUNERS)
    seed: int = opt(0, "seed of the TPE sampler")
    n_jobs: int = opt(1, "trials run in parallel (threads; each trial then uses --threads CPU threads of its own)")
    base: dict[str, Any] = opt({}, "config keys fixed for every trial", cli=False)  # noqa: RUF009 - opt() gives a default_factory
    space: dict[str, Any] = opt({}, "config leaf name -> {type: float|int|categorical, low, high, log, step, choices}", cli=False)  # noqa: RUF009 - opt() gives a default_factory
    pruner_args: dict[str, Any] = opt({}, "extra pruner arguments (from `pruner: {type: ..., ...}`)", cli=False)  # noqa: RUF009 - opt() gives a default_factory


# --------------------------------------------------------------------------------------------
# The spec: parse and validate
# --------------------------------------------------------------------------------------------
def parse_spec(data: Mapping[str, Any], overrides: Mapping[str, Any] | None = None) -> TuneConfig:
    """A :class:`TuneConfig` from the YAML mapping and CLI overrides; every config key is checked.

    Raises:
        ConfigError: unknown keys (with a suggestion), a bad distribution, a value the config refuses.
    """
    data = dict(data or {})
    for k in data:
        if k not in SPEC_KEYS:
            raise ConfigError(f"tune spec: unknown key '{k}', expected one of {', '.join(SPEC_KEYS)}{did_you_mean(str(k), SPEC_KEYS)}")
    pruner = data.pop("pruner", None)
    pruner_args: dict[str, Any] = {}
    if isinstance(pruner, Mapping):
        pruner_args = {str(k): v for k, v in pruner.items() if k != "type"}
        pruner = pruner.get("type")
        if pruner is None:
            raise ConfigError(f"tune spec 'pruner': expected a name or {{type: NAME, ...}}, got a mapping without type ({sorted(pruner_args)})")
    if pruner is not None:
        data["pruner"] = "none" if pruner is False else str(pruner)
    for k in ("base", "space"):
        if data.get(k) is None:
            data.pop(k, None)
        elif not isinstance(data[k], Mapping):
            raise ConfigError(f"tune spec '{k}': expected a mapping, got {type(data[k]).__name__}")
    cfg = C.from_dict(TuneConfig, {**data, **{k: v for k, v in (overrides or {}).items() if v is not None}})
    if cfg.metric == "auto":
        cfg.metric = _spec(cfg).monitor
    cfg.pruner_args = pruner_args or cfg.pruner_args
    cfg.base, cfg.space = dict(cfg.base), dict(cfg.space)
    if not cfg.space:
        raise ConfigError("tune spec 'space': expected at least one parameter to search, got none")
    if cfg.trials < 1:
        raise ConfigError(f"tune spec 'trials': expected >= 1, got {cfg.trials}")
    if cfg.n_jobs < 1:
        raise ConfigError(f"tune spec 'n_jobs': expected >= 1, got {cfg.n_jobs}")
    base_config(cfg)  # unknown / invalid base keys fail now
    for name, spec in cfg.space.items():
        _check_dist(cfg, name, spec)
    _pruner(cfg, 1)  # unknown pruner arguments fail now
    return cfg


def _spec(cfg: TuneConfig):
    from vislab.tasks import get_spec

    return get_spec(cfg.task)


def base_config(cfg: TuneConfig, params: Mapping[str, Any] | None = None, trial_defaults: bool = False):
    """The task's training config of ``base`` (over quiet trial defaults) and ``params``."""
    cls = _spec(cfg).config
    out = C.from_dict(cls, TRIAL_DEFAULTS) if trial_defaults else cls()
    out = C.from_dict(cls, cfg.base, base=out)
    return C.from_dict(cls, dict(params or {}), base=out)


def _check_dist(cfg: TuneConfig, name: str, spec: Any) -> None:
    where = f"tune space '{name}'"
    leaves = {leaf.name for leaf in C.leaves(_spec(cfg).config)}
    if name.replace("-", "_") not in leaves:
        raise ConfigError(f"{where}: unknown config key '{name}'{did_you_mean(name, leaves)}")
    if name in ("out", "name", "resume", "overwrite", "nproc"):
        raise ConfigError(f"{where}: expected a hyper-parameter, got a run setting the tuner owns")
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: expected {{type: float|int|categorical, ...}}, got {spec!r}")
    kind = spec.get("type")
    if kind not in DIST_TYPES:
        raise ConfigError(f"{where} type: expected one of {', '.join(DIST_TYPES)}, got {kind!r}{did_you_mean(str(kind), DIST_TYPES)}")
    allowed = {"float": ("type", "low", "high", "log", "step"), "int": ("type", "low", "high", "log", "step"),
               "categorical": ("type", "choices")}[kind]
    for k in spec:
        if k not in allowed:
            raise ConfigError(f"{where}: unknown key '{k}' for type {kind}, expected one of {', '.join(allowed)}{did_you_mean(str(k), allowed)}")
    if kind == "categorical":
        choices = spec.get("choices")
        if not isinstance(choices, list) or not choices:
            raise ConfigError(f"{where} choices: expected a non-empty list, got {choices!r}")
        values = choices
    else:
        if "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: expected low and high, got {sorted(spec)}")
        try:
            low, high = float(spec["low"]), float(spec["high"])
        except (TypeError, ValueError):
            raise ConfigError(f"{where}: expected numbers for low and high, got {spec['low']!r}, {spec['high']!r}") from None
        if not low < high:
            raise ConfigError(f"{where}: expected low < high, got low {low:g}, high {high:g}")
        if spec.get("log") and low <= 0:
            raise ConfigError(f"{where}: expected low > 0 with log: true, got {low:g}")
        if spec.get("log") and spec.get("step"):
            raise ConfigError(f"{where}: expected either log or step, got both")
        values = [spec["low"], spec["high"]]
    for v in values:  # the config itself checks types and choices (e.g. optimizer: sgdd)
        C.from_dict(_spec(cfg).config, {name: v})


def _suggest(trial: Any, name: str, spec: Mapping[str, Any]) -> Any:
    kind = spec["type"]
    if kind == "categorical":
        return trial.suggest_categorical(name, list(spec["choices"]))
    if kind == "int":
        return trial.suggest_int(name, int(spec["low"]), int(spec["high"]), step=int(spec.get("step") or 1), log=bool(spec.get("log", False)))
    step = spec.get("step")
    return trial.suggest_float(name, float(spec["low"]), float(spec["high"]), step=float(step) if step else None, log=bool(spec.get("log", False)))


def direction(cfg: TuneConfig) -> str:
    if cfg.direction != "auto":
        return cfg.direction
    from vislab.engine.trainer import monitor_mode

    return "minimize" if monitor_mode(cfg.metric) == "min" else "maximize"


def _pruner(cfg: TuneConfig, epochs: int):
    import optuna

    p = optuna.pruners
    if cfg.pruner == "none":
        cls, defaults = p.NopPruner, {}
    elif cfg.pruner == "median":
        cls, defaults = p.MedianPruner, {"n_startup_trials": 2, "n_warmup_steps": 0}
    elif cfg.pruner == "percentile":
        cls, defaults = p.PercentilePruner, {"percentile": 25.0, "n_startup_trials": 2}
    elif cfg.pruner == "hyperband":
        cls, defaults = p.HyperbandPruner, {"min_resource": 1, "max_resource": max(1, epochs)}
    else:
        cls, defaults = p.ThresholdPruner, {}
    params = [n for n in inspect.signature(cls.__init__).parameters if n != "self"]
    for k in cfg.pruner_args:
        if k not in params:
            raise ConfigError(f"tune pruner {cfg.pruner}: unknown argument '{k}', expected one of {', '.join(params) or 'none'}{did_you_mean(k, params)}")
    if cfg.pruner == "threshold" and not ({"lower", "upper"} & set(cfg.pruner_args)):
        raise ConfigError(f"tune pruner threshold: expected lower and/or upper, got {sorted(cfg.pruner_args) or 'neither'}")
    try:
        return cls(**{**defaults, **cfg.pruner_args})
    except (TypeError, ValueError) as e:
        raise ConfigError(f"tune pruner {cfg.pruner}: expected valid arguments, got {cfg.pruner_args} ({e})") from None


# --------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------
@dataclass
class TuneResult:
    study_dir: Path
    best_value: float | None
    best_params: dict[str, Any]
    best_trial: int | None
    finished: int
    pruned: int
    files: dict[str, Path] = field(default_factory=dict)


def _finished_states():
    from optuna.trial import TrialState

    return (TrialState.COMPLETE, TrialState.PRUNED)


def _fingerprint(cfg: TuneConfig) -> str:
    what = {"base": cfg.base, "space": cfg.space, "metric": cfg.metric, "direction": direction(cfg)}
    if cfg.task != "classify":  # studies of vislab 0.1 (classification only) keep their fingerprint
        what["task"] = cfg.task
    return json.dumps(what, sort_keys=True, default=str)


def open_study(cfg: TuneConfig, study_dir: Path):
    """Create or load the study in ``study_dir/study.db``; trials a killed process left RUNNING are marked FAIL."""
    import optuna
    from optuna.trial import TrialState

    study_dir.mkdir(parents=True, exist_ok=True)
    storage = optuna.storages.RDBStorage(f"sqlite:///{(study_dir / 'study.db').resolve()}")
    base = base_config(cfg)
    study = optuna.create_study(
        study_name=study_dir.name, storage=storage, load_if_exists=True, direction=direction(cfg),
        sampler=optuna.samplers.TPESampler(seed=cfg.seed, n_startup_trials=min(4, max(1, cfg.trials // 2))),
        pruner=_pruner(cfg, base.train.epochs),
    )
    fp = study.user_attrs.get("spec")
    if fp is None:
        study.set_user_attr("spec", _fingerprint(cfg))
    elif fp != _fingerprint(cfg):
        raise ConfigError(f"tune study '{study_dir}': expected the base, space and metric it was started with, got different ones "
                          "(use another --name for a new search)")
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING, TrialState.WAITING)):
        storage.set_trial_state_values(storage.get_trial_id_from_study_id_trial_number(storage.get_study_id_from_name(study.study_name), t.number), TrialState.FAIL)
    return study


def _objective(cfg: TuneConfig, trials_dir: Path):
    import optuna

    from vislab.tasks.base import train

    spec = _spec(cfg)
    from vislab.report.history import read_metrics_csv
    from vislab.engine.trainer import Callback

    maximize = direction(cfg) == "maximize"

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name, spec) for name, spec in cfg.space.items()}
        run = {"out": str(trials_dir.parent), "name": str(trial.number), "overwrite": True, "resume": ""}
        tcfg = base_config(cfg, {**params, **run}, trial_defaults=True)
        if cfg.n_jobs > 1 and not tcfg.train.threads:
            tcfg.train.threads = 1

        def report(epoch: int, row: dict[str, float]) -> None:
            value = row.get(cfg.metric)
            if value is None or not math.isfinite(value):
                return
            trial.report(float(value), epoch + 1)
            if epoch + 1 < tcfg.train.epochs and trial.should_prune():  # after the last epoch the trial is complete anyway
                raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {cfg.metric} {value:.4g}")

        run_dir = train(spec, tcfg, callbacks=[Callback(on_epoch_end=report)], folder=trials_dir.name)
        trial.set_user_attr("run", str(run_dir))
        hist = read_metrics_csv(run_dir / "metrics.csv") if (run_dir / "metrics.csv").is_file() else []
        values = [r[cfg.metric] for r in hist if isinstance(r.get(cfg.metric), int | float) and math.isfinite(r[cfg.metric])]
        if values:  # the best epoch: what best.safetensors holds
            return float(max(values) if maximize else min(values))
        summary = json.loads((run_dir / "run.json").read_text()).get("summary", {})
        if isinstance(summary.get(cfg.metric), int | float):
            return float(summary[cfg.metric])
        have = sorted({*(hist[0] if hist else {}), *(k for k, v in summary.items() if isinstance(v, int | float))})
        raise ConfigError(f"tune metric: expected one of {', '.join(have)}, got '{cfg.metric}'{did_you_mean(cfg.metric, have)}")

    return objective


def tune(cfg: TuneConfig, log=print) -> TuneResult:
    """Run (or resume) the study until it holds ``cfg.trials`` finished trials; write its report and ``best.yaml``."""
    import optuna
    from optuna.trial import TrialState

    name = cfg.name or "study"
    study_dir = Path(cfg.out).expanduser() / "tune" / name
    trials_dir = study_dir / "trials"
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = open_study(cfg, study_dir)
    lock = threading.Lock()
    objective = _objective(cfg, trials_dir)

    def after_trial(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
        with lock:
            write_trials_csv(study, study_dir / "trials.csv")
            msg = {TrialState.COMPLETE: f"{cfg.metric} {trial.value:.4f}" if trial.value is not None else "complete",
                   TrialState.PRUNED: f"pruned at epoch {trial.last_step}", TrialState.FAIL: "failed"}.get(trial.state, trial.state.name)
            log(f"trial {trial.number}: {msg}  {_fmt_params(trial.params)}")

    if cfg.n_jobs > 1:  # load the model registry and the data modules once, here, not racing in the trial threads
        from vislab.models.registry import MODELS

        _ = base_config(cfg).model.model in MODELS
    done = len(study.get_trials(deepcopy=False, states=_finished_states()))
    if done:
        log(f"resuming study {study_dir}: {done} of {cfg.trials} trials finished")
    failures = 0
    while done < cfg.trials:
        study.optimize(objective, n_trials=cfg.trials - done, n_jobs=cfg.n_jobs, catch=(TrainingError,),
                       callbacks=[after_trial, optuna.study.MaxTrialsCallback(cfg.trials, states=_finished_states())])
        now = len(study.get_trials(deepcopy=False, states=_finished_states()))
        failures = failures + 1 if now == done else 0
        if failures >= 3:
            raise TrainingError(f"tune: expected trials that finish, got only failures (see {trials_dir})")
        done = now
    return write_report(cfg, study, study_dir)


def _fmt_params(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())


# --------------------------------------------------------------------------------------------
# Report
# --------------------------------------------------------------------------------------------
def write_trials_csv(study: Any, path: Path) -> None:
    rows = ["number,state,value,last_epoch," + ",".join(_space_names(study))]
    for t in study.get_trials(deepcopy=False):
        vals = ",".join(str(t.params.get(k, "")) for k in _space_names(study))
        rows.append(f"{t.number},{t.state.name},{'' if t.value is None else f'{t.value:.6g}'},{t.last_step if t.last_step is not None else ''},{vals}")
    atomic_write_text(path, "\n".join(rows) + "\n")


def _space_names(study: Any) -> list[str]:
    return list(dict.fromkeys(k for t in study.get_trials(deepcopy=False) for k in t.params))


def importances(study: Any) -> dict[str, float]:
    """fANOVA parameter importances over complete trials ({} when fewer than 2 or when it fails)."""
    import optuna
    from optuna.trial import TrialState

    complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(complete) < 2 or len({t.value for t in complete}) < 2:
        return {}
    try:
        return dict(optuna.importance.get_param_importances(study))
    except Exception:  # noqa: BLE001 - importances are a nicety; a degenerate study must not fail the report
        return {}


def write_report(cfg: TuneConfig, study: Any, study_dir: Path) -> TuneResult:
    from optuna.trial import TrialState

    write_trials_csv(study, study_dir / "trials.csv")
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE]
    pruned = [t for t in trials if t.state == TrialState.PRUNED]
    files = {"db": study_dir / "study.db", "csv": study_dir / "trials.csv"}
    files["history"] = _plot_history(study, cfg, study_dir / "history.png")
    imp = importances(study)
    if imp:
        files["importances"] = _plot_importances(imp, study_dir / "importances.png")
    best = study.best_trial if complete else None
    if best is not None:
        bcfg = base_config(cfg, best.params)
        files["best"] = study_dir / "best.yaml"
        C.save_yaml(bcfg, files["best"])
    files["html"] = study_dir / "study.html"
    _write_html(cfg, study, best, imp, files)
    return TuneResult(study_dir, best.value if best else None, dict(best.params) if best else {}, best.number if best else None,
                      len(complete) + len(pruned), len(pruned), files)


def _plot_history(study: Any, cfg: TuneConfig, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    fig, ax = plt.subplots(figsize=(7, 4))
    maximize = direction(cfg) == "maximize"
    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    pr = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.PRUNED]
    if done:
        ax.scatter([t.number for t in done], [t.value for t in done], label="complete", color="tab:blue", zorder=3)
        best, xs, ys = None, [], []
        for t in sorted(done, key=lambda t: t.number):
            best = t.value if best is None else (max(best, t.value) if maximize else min(best, t.value))
            xs.append(t.number)
            ys.append(best)
        last = max(t.number for t in study.get_trials(deepcopy=False))
        ax.step([*xs, last], [*ys, ys[-1]], where="post", color="tab:red", label="best so far")
    if pr:  # their last reported (intermediate) value
        ax.scatter([t.number for t in pr], [t.intermediate_values[t.last_step] if t.last_step is not None else float("nan") for t in pr],
                   marker="x", color="gray", label="pruned (last epoch reported)", zorder=3)
    ax.set_xlabel("trial")
    ax.set_ylabel(cfg.metric)
    ax.set_title(f"optimisation history ({direction(cfg)} {cfg.metric})")
    ax.grid(alpha=0.3)
    if done or pr:
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plot_importances(imp: Mapping[str, float], path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(imp)[::-1]
    fig, ax = plt.subplots(figsize=(6, 0.5 + 0.4 * len(names)))
    ax.barh(names, [imp[n] for n in names], color="tab:green")
    ax.set_xlabel("importance (fANOVA, normalised)")
    ax.set_title("hyper-parameter importances")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _write_html(cfg: TuneConfig, study: Any, best: Any, imp: Mapping[str, float], files: dict[str, Path]) -> None:
    from vislab.report.html import CSS, _img, table

    rows = [{"trial": t.number, "state": t.state.name, cfg.metric: t.value if t.value is not None else "",
             "epochs": t.last_step if t.last_step is not None else "", **t.params} for t in study.get_trials(deepcopy=False)]
    parts = [f"<html><head><meta charset='utf-8'><title>vislab tune {html.escape(study.study_name)}</title><style>{CSS}</style></head><body>",
             f"<h1>vislab tune: {html.escape(study.study_name)}</h1>",
             f"<p>{direction(cfg)} <code>{html.escape(cfg.metric)}</code>; pruner {html.escape(cfg.pruner)}; TPE seed {cfg.seed}</p>"]
    if best is not None:
        parts.append(f"<h2>best trial {best.number}: {cfg.metric} {best.value:.4f}</h2>" + table([dict(best.params)]))
        parts.append(f"<p>retrain with <code>vislab {html.escape(cfg.task)} train --config best.yaml</code></p>")
    parts += ["<h2>history</h2>", _img(files["history"])]
    if imp:
        parts += ["<h2>importances</h2>", _img(files["importances"])]
    parts += ["<h2>trials</h2>", table(rows), "<h2>search space</h2>",
              f"<pre>{html.escape(json.dumps({'base': cfg.base, 'space': cfg.space}, indent=1, default=str))}</pre></body></html>"]
    atomic_write_text(files["html"], "\n".join(parts))


def load_spec(path: str | Path, overrides: Mapping[str, Any] | None = None) -> TuneConfig:
    """Read a search YAML; the study name defaults to the file's stem."""
    cfg = parse_spec(C.load_yaml(path), overrides)
    if not cfg.name:
        cfg = dataclasses.replace(cfg, name=Path(path).stem)
    return cfg
