"""The error hierarchy. Every message says what was expected and what came.

The CLI turns any :class:`VislabError` into one line on stderr and exit code 2
(a traceback only with ``--debug``). Library users catch the specific subclass.

Example:
    >>> err = ShapeError("rgb_to_hsv", "(*, 3, H, W)", (2, 1, 4, 4))
    >>> str(err)
    'rgb_to_hsv: expected (*, 3, H, W), got (2, 1, 4, 4)'
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class VislabError(Exception):
    """Base class of every error vislab raises on purpose (bad input, bad config, bad state)."""

    exit_code = 2


class ConfigError(VislabError, ValueError):
    """A configuration value or key is invalid."""


class DataError(VislabError, ValueError):
    """A dataset, image, label or mask is missing, unreadable or inconsistent."""


class ModelError(VislabError, ValueError):
    """A model name is unknown or a model cannot be built with the given arguments."""


class CheckpointError(VislabError, ValueError):
    """A checkpoint is missing, corrupt, or belongs to another model / class count."""


class TrainingError(VislabError, RuntimeError):
    """Training cannot go on (for example the loss became NaN)."""


class ShapeError(VislabError, ValueError):
    """A tensor has the wrong shape, dtype or number of channels."""

    def __init__(self, where: str, expected: str, got: object):
        if isinstance(got, tuple | list):
            got = tuple(int(s) for s in got)
        super().__init__(f"{where}: expected {expected}, got {got}")


# What the short names of options stand for, so that a key spelt out in words still finds them.
ABBREVIATIONS = {"lr": "learning rate", "img": "image", "nms": "non maximum suppression iou", "ema": "exponential moving average",
                 "nproc": "number processes gpus", "bn": "batch norm normalization", "gp": "gradient penalty", "d": "discriminator critic",
                 "g": "generator", "z": "latent noise", "tta": "test time augmentation", "eval": "evaluation", "val": "validation"}


def _words(name: str) -> list[str]:
    out: list[str] = []
    for w in name.lower().replace("-", "_").split("_"):
        out += ABBREVIATIONS.get(w, w).split() if w in ABBREVIATIONS else [w]
    return [w for w in out if w]


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return `` (did you mean 'x'?)`` for the closest choice, or ``''`` when none is close: by spelling, else the
    choice that shares the most (nearly spelt) words, with short names spelt out (``lr`` = learning rate).

    Example:
        >>> did_you_mean("resnt18", ["resnet18", "lenet5"])
        " (did you mean 'resnet18'?)"
        >>> did_you_mean("lerning_rate", ["lr", "drop_rate", "epochs"])
        " (did you mean 'lr'?)"
    """
    choices = list(choices)
    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    if not close:
        mine = _words(word)
        scores = []
        for c in choices:
            theirs = _words(c)
            shared = sum(1 for w in mine if difflib.get_close_matches(w, theirs, n=1, cutoff=0.8))
            scores.append((shared, -len(theirs), c))
        best = max(scores, default=(0, 0, ""))
        close = [best[2]] if best[0] >= 1 and best[0] * 2 >= len(mine) else []
    return f" (did you mean '{close[0]}'?)" if close else ""
