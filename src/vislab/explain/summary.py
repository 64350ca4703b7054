"""Model summaries: per-layer output shapes, parameters, FLOPs / MACs, a memory estimate, stage widths.

FLOPs come from PyTorch's own counter (:class:`torch.utils.flop_counter.FlopCounterMode`), which counts
matrix multiplies and convolutions (2 FLOPs per multiply-add; element-wise ops are not counted, as in
the papers' tables). A model built on the ``meta`` device is summarised without allocating memory or
computing anything, so ``vislab models show vgg16`` is instant.

Example:
    >>> import torch
    >>> from vislab.models import create_model
    >>> with torch.device("meta"):
    ...     model = create_model("resnet18", num_classes=10, stem="cifar")
    >>> s = summarize(model, (3, 32, 32))
    >>> s.params, round(s.macs / 1e6)
    (11173962, 555)
    >>> [st.channels for st in s.stages]
    [64, 128, 256, 512]
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from vislab.core.errors import ModelError


@dataclass
class LayerRow:
    """One module of the summary table."""

    name: str
    kind: str
    depth: int
    output_shape: tuple[int, ...] | None
    params: int
    flops: int


@dataclass
class Stage:
    """One level of the feature pyramid: its channels and spatial size."""

    name: str
    channels: int
    height: int
    width: int


@dataclass
class ModelSummary:
    """What :func:`summarize` measured; ``to_text()`` renders it, :func:`plot_stage_widths` draws it."""

    name: str
    input_shape: tuple[int, ...]
    rows: list[LayerRow]
    params: int
    trainable_params: int
    flops: int
    param_bytes: int
    activation_bytes: int
    output_shape: tuple[int, ...] | None
    stages: list[Stage] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """Multiply-accumulates: FLOPs / 2."""
        return self.flops // 2

    def memory_estimate(self) -> dict[str, float]:
        """Rough memory in MiB at the summarised batch size.

        ``inference``: weights + the activations of every leaf module; ``training``: weights, gradients
        and two Adam moments (4x weights) + activations kept for backward (counted twice: forward
        outputs and their gradients).
        """
        mib = 2.0**20
        return {
            "params": self.param_bytes / mib,
            "activations": self.activation_bytes / mib,
            "inference": (self.param_bytes + self.activation_bytes) / mib,
            "training": (4 * self.param_bytes + 2 * self.activation_bytes) / mib,
        }

    def totals(self) -> list[tuple[str, str]]:
        mem = self.memory_estimate()
        return [
            ("input", "x".join(map(str, self.input_shape))),
            ("output", "x".join(map(str, self.output_shape or ()))),
            ("parameters", f"{self.params:,} ({human(self.params)})"),
            ("trainable", f"{self.trainable_params:,}"),
            ("FLOPs", f"{human(self.flops)} ({human(self.macs)} MACs)"),
            ("params memory", f"{mem['params']:.1f} MiB"),
            ("activations", f"{mem['activations']:.1f} MiB (forward, all leaf outputs)"),
            ("estimate", f"inference {mem['inference']:.1f} MiB, training (Adam) {mem['training']:.1f} MiB"),
        ]

    def to_text(self) -> str:
        """A plain-text table (layer, type, output shape, parameters, FLOPs) followed by the totals."""
        head = ("layer", "type", "output shape", "params", "FLOPs")
        body = [
            ("  " * (r.depth - 1) + r.name, r.kind, _shape(r.output_shape), f"{r.params:,}" if r.params else "-", human(r.flops) if r.flops else "-")
            for r in self.rows
        ]
        widths = [max(len(str(c)) for c in col) for col in zip(head, *body)]
        fmt = "  ".join(f"{{:<{w}}}" if i < 3 else f"{{:>{w}}}" for i, w in enumerate(widths))
        lines = [f"{self.name}", fmt.format(*head), "-" * (sum(widths) + 2 * (len(widths) - 1))]
        lines += [fmt.format(*row) for row in body]
        lines.append("-" * (sum(widths) + 2 * (len(widths) - 1)))
        lines += [f"{k:<14} {v}" for k, v in self.totals()]
        return "\n".join(lines)


def human(n: float) -> str:
    """``1234567 -> '1.23M'``."""
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= scale:
            return f"{n / scale:.2f}{unit}"
    return f"{n:.0f}"


def _shape(s: tuple[int, ...] | None) -> str:
    return "-" if s is None else "(" + ", ".join(map(str, s)) + ")"


def _first_tensor(out: object) -> torch.Tensor | None:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, list | tuple):
        for o in out:
            t = _first_tensor(o)
            if t is not None:
                return t
    if isinstance(out, dict):
        return _first_tensor(list(out.values()))
    return None


def summarize(model: nn.Module, input_size: tuple[int, ...] = (3, 224, 224), batch_size: int = 1, depth: int = 2, name: str = "") -> ModelSummary:
    """Run one forward pass with hooks and a FLOP counter and collect a :class:`ModelSummary`.

    Args:
        model: any module; on the ``meta`` device nothing is allocated or computed.
        input_size: (C, H, W) of one input.
        batch_size: B of the summarised input (FLOPs and activations scale with it).
        depth: deepest module nesting listed as a row (1: the model's children).
        name: title of the summary (default: the class name).

    Raises:
        ModelError: the forward pass fails at this input size (e.g. smaller than the model accepts).
    """
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    x = torch.zeros(batch_size, *input_size, device=device)
    names = {m: n for n, m in model.named_modules() if n}
    outputs: dict[str, tuple[int, ...]] = {}
    act_bytes = [0]

    def hook(module: nn.Module, _inp: object, out: object) -> None:
        t = _first_tensor(out)
        n = names.get(module)
        if t is None or n is None:
            return
        outputs[n] = tuple(t.shape)
        if not any(True for _ in module.children()):  # leaf: its output is one stored activation
            act_bytes[0] += t.numel() * t.element_size()

    handles = [m.register_forward_hook(hook) for m in names]
    was_training = model.training
    model.eval()
    counter = FlopCounterMode(display=False, depth=None)
    try:
        with torch.no_grad(), counter:
            y = model(x)
    except (RuntimeError, ValueError) as e:
        raise ModelError(f"summary of {name or type(model).__name__}: forward failed at input {tuple(x.shape)}: {str(e).splitlines()[0]}") from e
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    root = type(model).__name__
    per_module = {k: sum(v.values()) for k, v in counter.get_flop_counts().items()}
    rows = []
    for n, m in model.named_modules():
        d = n.count(".") + 1
        if not n or d > depth:
            continue
        rows.append(LayerRow(n, type(m).__name__, d, outputs.get(n), sum(q.numel() for q in m.parameters()), int(per_module.get(f"{root}.{n}", 0))))
    stages = _stages(model, x)
    y_t = _first_tensor(y)
    return ModelSummary(
        name=name or root,
        input_shape=tuple(x.shape),
        rows=rows,
        params=sum(q.numel() for q in model.parameters()),
        trainable_params=sum(q.numel() for q in model.parameters() if q.requires_grad),
        flops=int(counter.get_total_flops()),
        param_bytes=sum(q.numel() * q.element_size() for q in model.parameters()),
        activation_bytes=act_bytes[0],
        output_shape=None if y_t is None else tuple(y_t.shape),
        stages=stages,
    )


def _stages(model: nn.Module, x: torch.Tensor) -> list[Stage]:
    """Stages from ``feature_pyramid`` when the model has one, else the children with 4-D outputs."""
    pyramid = getattr(model, "feature_pyramid", None)
    was_training = model.training
    model.eval()
    try:
        return _stages_eval(model, x, pyramid)
    finally:
        model.train(was_training)


def _stages_eval(model: nn.Module, x: torch.Tensor, pyramid) -> list[Stage]:
    with torch.no_grad():
        if callable(pyramid):
            names = list(getattr(model, "feature_modules", ())) or ["features"]
            maps = pyramid(x)
            names = names if len(names) == len(maps) else [f"stage{i + 1}" for i in range(len(maps))]
            return [Stage(n, int(f.shape[1]), int(f.shape[2]), int(f.shape[3])) for n, f in zip(names, maps) if f.ndim == 4]
        stages: list[Stage] = []
        for n, child in model.named_children():
            try:
                x = child(x)
            except (RuntimeError, ValueError):  # children that are not a chain (video models' backbone + RNN): stop there
                break
            if isinstance(x, torch.Tensor) and x.ndim == 4:
                stages.append(Stage(n, int(x.shape[1]), int(x.shape[2]), int(x.shape[3])))
            elif not isinstance(x, torch.Tensor):
                break
        return stages


def plot_stage_widths(summary: ModelSummary, path: str | Path) -> Path:
    """Draw the stages as blocks: height = channels (log scale), label = C x H x W; write a PNG.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from vislab.core.io import atomic_path

    if not summary.stages:
        raise ModelError(f"stage picture of {summary.name}: expected 4-D feature maps, got none")
    st = summary.stages
    fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(st) + 2), 4.5), constrained_layout=True)
    xs = range(len(st))
    bars = ax.bar(xs, [s.channels for s in st], color=plt.cm.viridis([i / max(len(st) - 1, 1) for i in xs]), width=0.7)
    for b, s in zip(bars, st):
        ax.annotate(f"{s.channels}\n{s.height}x{s.width}", (b.get_x() + b.get_width() / 2, b.get_height()), ha="center", va="bottom", fontsize=8)
    ax.set_yscale("log", base=2)
    ax.set_ylim(min(s.channels for s in st) / 2, max(s.channels for s in st) * 4)
    ax.set_xticks(list(xs), [s.name for s in st], rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("channels (log2 scale)")
    ax.set_xlabel(f"stage (label: channels, H x W at input {'x'.join(map(str, summary.input_shape[1:]))})")
    ax.set_title(f"{summary.name}: stage widths — {human(summary.params)} params, {human(summary.macs)} MACs")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, format="png")
    plt.close(fig)
    return path
