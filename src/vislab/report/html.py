"""A self-contained ``report.html``: pictures embedded as base64, tables, timings, environment."""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path
from typing import Any

from vislab.core.io import atomic_write_text

CSS = """
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
h1{font-size:1.5em}h2{font-size:1.15em;margin-top:1.6em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;font-size:.9em}td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}img{max-width:100%}
.kv td{text-align:left}code{background:#f4f4f4;padding:1px 4px}
"""


def _img(path: Path) -> str:
    data = base64.b64encode(Path(path).read_bytes()).decode()
    mime = "image/gif" if Path(path).suffix.lower() == ".gif" else "image/png"  # an animated GIF plays in the page
    return f'<img alt="{html.escape(Path(path).name)}" src="data:{mime};base64,{data}">'


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return html.escape(str(v))


def table(rows: list[dict[str, Any]], cols: list[str] | None = None) -> str:
    if not rows:
        return "<p>(none)</p>"
    cols = cols or list(dict.fromkeys(k for r in rows for k in r))
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{_fmt(r.get(c, ''))}</td>" for c in cols) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def kv_table(d: dict[str, Any]) -> str:
    body = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{_fmt(v)}</td></tr>" for k, v in d.items())
    return f'<table class="kv">{body}</table>'


def write_report(path: Path, title: str, sections: list[tuple[str, str]]) -> Path:
    """Write a report page: ``sections`` are (heading, html body); pictures via :func:`_img`."""
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title><style>{CSS}</style></head><body>",
             f"<h1>{html.escape(title)}</h1>"]
    for heading, body in sections:
        parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append("</body></html>")
    atomic_write_text(path, "\n".join(parts))
    return Path(path)


def picture(path: Path | None) -> str:
    return _img(path) if path and Path(path).exists() else "<p>(not available)</p>"


def pre_json(d: Any) -> str:
    return f"<pre>{html.escape(json.dumps(d, indent=1, default=str))}</pre>"


ENVIRONMENT = ("vislab", "git", "python", "torch", "platform", "processor", "cpu_threads", "cuda", "command", "started",
               "precision", "channels_last", "device", "world_size")


def run_report(run_dir: Path, title: str, result: Any, sections: list[tuple[str, str]], headline: tuple[str, ...] = ("test_", "best", "final_")) -> Path:
    """``report.html`` of a training run: a summary (the ``run.json`` summary entries starting with ``headline``,
    and the timings of ``result``, a fit result), the task's ``sections``, then the epochs, the environment and the
    config -- the same frame for every task."""
    run = json.loads((Path(run_dir) / "run.json").read_text()) if (Path(run_dir) / "run.json").exists() else {}
    summary = {k: v for k, v in run.get("summary", {}).items() if k.startswith(headline) and not isinstance(v, dict | list)
               and not (v == -1 and ("_map" in k or "_mar" in k))}  # COCO's -1: no objects of that size, not a value
    timing = {"train seconds": round(result.seconds, 2), "images / second": round(result.images_per_second, 1),
              "epochs": len(result.history), "stopped early": result.stopped_early}
    config = Path(run_dir) / "config.yaml"
    frame = [("Summary", kv_table({**summary, **timing})), *sections, ("Epochs", table(result.history)),
             ("Environment", kv_table({k: run[k] for k in ENVIRONMENT if k in run})),
             ("Config", f"<pre>{html.escape(config.read_text()) if config.exists() else ''}</pre>")]
    return write_report(Path(run_dir) / "report.html", title, frame)

