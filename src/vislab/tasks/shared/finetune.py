"""Fine-tuning strategies: which layer groups train when, at which learning rate, with which BatchNorm.

A classifier is cut into *layer groups*, shallow to deep, from its stage structure
(:attr:`~vislab.models.classify.base.Classifier.feature_modules`): group ``i`` holds every parameter registered up
to the end of stage ``i``; the layers between the last stage and the head (e.g. VGG's ``fc``) form one
more group; the classifier head is the last group.

Strategies (``--finetune``):

* ``scratch``: random initialisation, everything trains (the baseline);
* ``full``: start from the weights, everything trains;
* ``linear``: only the head trains; the backbone is frozen, BatchNorm statistics included;
* ``gradual``: the head trains first, then one more group from the top every ``--unfreeze-every`` epochs
  (ULMFiT's gradual unfreezing). Which groups train is a pure function of the epoch, so resume works.

Discriminative learning rates (``--layer-decay d``): group ``g`` levels below the head gets
``lr * d**g`` (``set_lr`` honours each optimizer group's ``lr_scale``). ``--freeze-bn`` keeps every
BatchNorm layer in inference mode (pretrained statistics and affine parameters), useful with small batches.

Example:
    >>> from vislab.models.registry import create_model
    >>> m = create_model("small_cnn", num_classes=3, width=8)
    >>> [name for name, _ in layer_groups(m)]
    ['stage0', 'stage1', 'stage2', 'head']
    >>> plan = FinetunePlan(m, "linear")
    >>> sorted({p.requires_grad for n, p in m.named_parameters() if n.startswith("head")})
    [True]
    >>> any(p.requires_grad for n, p in m.named_parameters() if not n.startswith("head"))
    False
"""

from __future__ import annotations

from torch import nn

from vislab.core.errors import ConfigError
from vislab.engine.trainer import Callback

STRATEGIES = ("auto", "scratch", "linear", "full", "gradual")
_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.SyncBatchNorm)


def layer_groups(model: nn.Module) -> list[tuple[str, list[tuple[str, nn.Parameter]]]]:
    """The model's parameters in groups, shallow to deep; the last group is the head.

    Returns:
        ``[(group name, [(param name, param), ...]), ...]``; empty groups are left out.
    """
    head_mod = model.get_classifier() if hasattr(model, "get_classifier") else None
    head_ids = {id(p) for p in head_mod.parameters()} if isinstance(head_mod, nn.Module) else set()
    stages = list(getattr(model, "feature_modules", ()) or ())
    groups: list[list[tuple[str, nn.Parameter]]] = [[] for _ in range(len(stages) + 1)]
    head: list[tuple[str, nn.Parameter]] = []
    stage, inside = 0, None  # inside: the stage module being walked
    for mname, mod in model.named_modules():
        if inside is not None and not (mname == inside or mname.startswith(inside + ".")):
            stage, inside = stage + 1, None  # left the stage module: the next group begins
        if stage < len(stages) and mname == stages[stage]:
            inside = stages[stage]
        for pname, p in mod.named_parameters(recurse=False):
            full = f"{mname}.{pname}" if mname else pname
            (head if id(p) in head_ids else groups[min(stage, len(stages))]).append((full, p))
    named = [(f"stage{i}" if i < len(stages) else "neck", g) for i, g in enumerate(groups)]
    return [(n, g) for n, g in named if g] + ([("head", head)] if head else [])


def _freeze_bn_hook(module: nn.Module, _inputs) -> None:
    if getattr(module, "vislab_frozen", False):
        module.training = False  # pretrained statistics: normalise with running stats, do not update them


class FinetunePlan:
    """Applies a strategy to ``model`` and gives the trainer its optimizer groups and epoch hook.

    Args:
        model: a classifier (its weights already loaded).
        strategy: ``scratch | full | linear | gradual``.
        layer_decay: lr multiplier per group below the head (1: one lr for all).
        freeze_bn: keep every BatchNorm layer frozen (statistics and affine parameters).
        unfreeze_every: ``gradual``: epochs between unfreezing one more group.
    """

    def __init__(self, model: nn.Module, strategy: str, layer_decay: float = 1.0, freeze_bn: bool = False, unfreeze_every: int = 1):
        if strategy not in STRATEGIES[1:]:
            raise ConfigError(f"--finetune: expected one of {', '.join(STRATEGIES[1:])}, got {strategy!r}")
        if not 0 < layer_decay <= 1:
            raise ConfigError(f"--layer-decay: expected a value in (0, 1], got {layer_decay}")
        if unfreeze_every < 1:
            raise ConfigError(f"--unfreeze-every: expected >= 1, got {unfreeze_every}")
        self.model, self.strategy = model, strategy
        self.layer_decay, self.freeze_bn, self.unfreeze_every = layer_decay, freeze_bn, unfreeze_every
        self.groups = layer_groups(model)
        self._bn_owner: list[tuple[nn.Module, int]] = []  # (bn module, its group index)
        group_of = {id(p): i for i, (_, ps) in enumerate(self.groups) for _, p in ps}
        for m in model.modules():
            if isinstance(m, _BN):
                gi = next((group_of[id(p)] for p in m.parameters(recurse=False) if id(p) in group_of), 0)
                m.register_forward_pre_hook(_freeze_bn_hook)
                self._bn_owner.append((m, gi))
        self.set_epoch(0)

    def trainable_groups(self, epoch: int) -> int:
        """How many groups, counted from the head, train in ``epoch`` (0-based)."""
        n = len(self.groups)
        if self.strategy in ("scratch", "full"):
            return n
        if self.strategy == "linear":
            return 1
        return min(n, 1 + epoch // self.unfreeze_every)

    def set_epoch(self, epoch: int) -> None:
        """Freeze / unfreeze parameters and BatchNorm layers for ``epoch``."""
        n = len(self.groups)
        first_trainable = n - self.trainable_groups(epoch)
        for i, (_, ps) in enumerate(self.groups):
            for _, p in ps:
                p.requires_grad_(i >= first_trainable)
        for m, gi in self._bn_owner:
            frozen = self.freeze_bn or gi < first_trainable
            m.vislab_frozen = frozen
            for p in m.parameters(recurse=False):
                p.requires_grad_(not frozen and gi >= first_trainable)

    def param_groups(self, model: nn.Module, weight_decay: float) -> list[dict]:
        """Optimizer groups, head first (so the logged lr is the head's), each with its ``lr_scale``.

        Every parameter is in a group even while frozen (it has no gradient then, so the optimizer
        leaves it alone), which keeps the optimizer state the same shape through gradual unfreezing
        and resume.
        """
        out: list[dict] = []
        for depth, (name, ps) in enumerate(reversed(self.groups)):
            scale = self.layer_decay ** depth
            decay = [p for _, p in ps if p.ndim > 1]
            no_decay = [p for _, p in ps if p.ndim <= 1]
            for params, wd in ((decay, weight_decay), (no_decay, 0.0)):
                if params:
                    out.append({"params": params, "weight_decay": wd, "lr_scale": scale, "name": name})
        return out

    def callback(self) -> Callback:
        """The trainer hook that applies :meth:`set_epoch` before each epoch."""
        return Callback(on_epoch_start=self.set_epoch)

    def describe(self) -> str:
        names = [n for n, _ in self.groups]
        lrs = ", ".join(f"{n} x{self.layer_decay ** d:.3g}" for d, n in enumerate(reversed(names))) if self.layer_decay != 1 else "one lr"
        sched = {"gradual": f", one more group every {self.unfreeze_every} epoch(s)"}.get(self.strategy, "")
        return (f"finetune {self.strategy}: {len(names)} layer groups ({', '.join(names)}); {lrs}{sched}"
                + ("; BatchNorm frozen" if self.freeze_bn else ""))


def resolve_strategy(strategy: str, has_weights: bool) -> str:
    """``auto`` -> ``full`` with weights, ``scratch`` without; a strategy that needs weights checks for them."""
    if strategy == "auto":
        return "full" if has_weights else "scratch"
    if strategy in ("linear", "full", "gradual") and not has_weights:
        raise ConfigError(f"--finetune {strategy}: expected --weights PATH or --pretrained TAG to start from, got neither")
    if strategy == "scratch" and has_weights:
        raise ConfigError("--finetune scratch: expected no --weights / --pretrained (scratch means random initialisation), got weights")
    return strategy


def choose_norm(mode: str, data: tuple[tuple[float, ...], tuple[float, ...]], weights_stats: tuple | None, channels: int):
    """The (mean, std) to normalise with: the weights' (``auto`` when they carry any, or ``weights``) or the data's.

    Raises:
        ConfigError: ``--norm weights`` but the weights carry no statistics for ``channels`` channels.
    """
    ok = weights_stats is not None and all(s is not None and len(s) == channels for s in weights_stats)
    if mode == "weights" and not ok:
        raise ConfigError(f"--norm weights: expected weights with {channels}-channel mean/std metadata, got {weights_stats}")
    if mode != "data" and ok:
        return tuple(weights_stats[0]), tuple(weights_stats[1])
    return data
