"""Learning-rate finder: a clear descent on digits, a suggestion inside the sweep, the plot, no side effects."""

from __future__ import annotations

import pytest
import torch

from vislab.core.config import from_dict
from vislab.core.errors import ConfigError
from vislab.data.classify.stream import Batch
from vislab.recipes.lr_finder import find_lr, lr_find, suggest
from vislab.tasks import classify


def test_digits_curve_descends_and_suggestion_in_range(tmp_path):
    cfg = from_dict(classify.ClassifyConfig, {"data": "digits", "img_size": 16, "batch_size": 32, "threads": 1, "out": str(tmp_path)})
    rng = torch.get_rng_state()
    res = lr_find(classify.SPEC, cfg, steps=60, start_lr=1e-5, end_lr=10)
    assert torch.equal(rng, torch.get_rng_state())  # the global RNG is left as it was
    assert res.start_lr <= res.suggestion <= res.lrs[-1] and res.steepest_lr is not None
    assert min(res.smoothed) < 0.7 * res.smoothed[0]  # a clear descent (measured: 2.30 -> ~1.1)
    assert res.lrs[0] == pytest.approx(1e-5) and all(b > a for a, b in zip(res.lrs, res.lrs[1:], strict=False))
    png = tmp_path / "lr-find" / "classify" / "lr_find.png"  # outside runs/classify: not mistaken for a run
    assert res.files["png"] == png and png.stat().st_size > 5000 and (png.parent / "lr_find.csv").is_file()


def _toy():
    torch.manual_seed(0)
    x = torch.randn(96, 6)
    y = (x[:, 0] + x[:, 1] > 0).long()

    class Stream:
        def epoch(self, e):
            return [Batch(x[i:i + 32], y[i:i + 32], 32) for i in range(0, 96, 32)]

    def step(m, b):
        return torch.nn.functional.cross_entropy(m(b.x), b.y, reduction="sum"), {}

    return Stream(), step


def test_weights_restored_and_divergence_stops_early():
    stream, step = _toy()
    model = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    res = find_lr(model, step, stream, lambda m: torch.optim.SGD(m.parameters(), lr=1, momentum=0.9), steps=200, start_lr=1e-4, end_lr=1e4)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in model.parameters())
    assert res.diverged and len(res.lrs) < 200 and 1e-4 <= res.suggestion <= 1e4


def test_suggest_falls_back_to_min_loss_over_ten():
    lrs = [10 ** (-5 + i / 10) for i in range(40)]
    flat_then_up = [1.0] * 30 + [1.0 + i for i in range(10)]
    steep, min_lr = suggest(lrs, flat_then_up)
    assert steep is None and min_lr == lrs[0]


def test_bad_range_raises():
    stream, step = _toy()
    with pytest.raises(ConfigError, match="--end-lr: expected > --start-lr"):
        find_lr(torch.nn.Linear(6, 2), step, stream, lambda m: torch.optim.SGD(m.parameters(), lr=1), start_lr=1, end_lr=0.1)


def test_cli_lr_find(tmp_path, capsys):
    from vislab.cli.main import main

    main(["classify", "lr-find", "--data", "digits", "--img-size", "16", "--steps", "30", "--start-lr", "1e-4", "--threads", "1",
          "--plot", str(tmp_path / "lr.png")])
    assert "suggested --lr" in capsys.readouterr().out and (tmp_path / "lr.png").is_file() and (tmp_path / "lr.csv").is_file()
    with pytest.raises(SystemExit) as e:
        main(["classify", "lr-find", "--steps", "2"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and "expected >= 5, got 2" in err and err.strip().count("\n") == 0


@pytest.mark.parametrize(("task", "args"), [
    ("segment", ["--synth-count", "64", "--img-size", "16", "--width", "4", "--depth", "2", "--batch-size", "16"]),
    ("detect", ["--synth-count", "48", "--img-size", "32", "--width", "4", "--batch-size", "16"]),
])
def test_lr_find_of_other_tasks(tmp_path, capsys, task, args):
    """The range test runs on any task with one optimizer: its own data, model and training step."""
    from vislab.cli.main import main

    main([task, "lr-find", *args, "--steps", "20", "--threads", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "suggested --lr" in out and (tmp_path / "lr-find" / task / "lr_find.png").stat().st_size > 5000
    rows = (tmp_path / "lr-find" / task / "lr_find.csv").read_text().splitlines()
    assert rows[0] == "step,lr,loss,smoothed" and len(rows) >= 6
