"""The epoch history as ``metrics.csv``: one row per epoch, columns in first-seen order.

Written from the full history each time (atomically), so the file always agrees with the checkpoint a
resume continues from; read back as floats for comparisons, plots and tuning.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from vislab.core.io import atomic_write_text


def write_metrics_csv(path: Path, history: list[dict[str, Any]]) -> None:
    """Rewrite ``metrics.csv`` from the full history (atomic; consistent with the last checkpoint)."""
    keys: list[str] = []
    for row in history:
        keys += [k for k in row if k not in keys]
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=keys)
    w.writeheader()
    for row in history:
        w.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
    atomic_write_text(path, buf.getvalue())


def read_metrics_csv(path: Path) -> list[dict[str, float]]:
    with open(path) as f:
        return [{k: float(v) for k, v in row.items() if v not in ("", None)} for row in csv.DictReader(f)]
