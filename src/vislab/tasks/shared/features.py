"""Feature networks for neural style transfer: whose activations the content and style losses are measured in.

:func:`load_feature_net` takes a spec:

* ``vgg19:FILE`` / ``vgg16:FILE`` -- torchvision's VGG (``vgg19-dcbb9e9d.pth``, or any state dict of that
  architecture; read with ``torch.load(weights_only=True)`` or as ``.safetensors``). Only the ``features.*`` tensors
  are used (a file holding only them works; a file of bare ``0.weight``... keys of the conv stack too). The layers
  get the paper's names ``conv1_1, relu1_1, ..., pool1, ..., relu5_4``. ImageNet normalisation.
* ``auto`` -- VGG-19 weights at ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth`` when someone put them there,
  else the ``random`` network, with :attr:`FeatureNet.note` saying so (the CLI prints it). Nothing is downloaded.
* ``random`` -- a randomly initialised (fixed seed) VGG-like network, 5 blocks of two 3x3 conv + ReLU layers and
  average pooling, named ``relu{block}_{i}`` like VGG so the same default layers apply. Random filters are known to
  give usable Gram statistics: Ustyuzhaninov et al. 2017 ("What does it take to generate natural textures?",
  ICLR) synthesise textures from one layer of random multi-scale filters nearly as well as from VGG, and He et al.
  2016 ("A powerful generative model using random weights for the deep image representation", NeurIPS) do style
  transfer with a random-weight VGG. To keep the activations from vanishing, exploding or collapsing onto their
  mean with depth, every conv is Kaiming-initialised and then *calibrated*: its bias and scale are set so its
  output has zero mean and unit variance per channel on a fixed batch of 1/f ("pink") noise images, which share
  the power spectrum of natural images (a data-dependent initialisation in the spirit of Mishkin & Matas 2016 and
  Krähenbühl et al. 2016); every ReLU is followed by a fixed per-channel shift and scale calibrated the same way
  (:class:`CenteredReLU`), without which the Gram matrices are dominated by the channel means and barely see the
  texture. The calibration runs in float64, so the weights are bit-identical whatever the thread count. Limits: the network has learned nothing, so the "content" it keeps is local structure
  and colour, not objects, and the "style" it transfers is texture statistics (colour, contrast, edge orientation
  and scale), not the brush strokes and motifs a trained VGG picks up; it is nearly blind to pixel-level noise,
  which the TV loss has to remove.
* a vislab ``classify`` run folder or checkpoint -- its intermediate activations: the outputs of the model's
  ``feature_modules`` (the last module at each resolution), else of its top-level modules, keeping the last one at
  each spatial resolution. Its layers are named by module (``features.4``, ``layer2``...); the default style layers
  are those with at least 2 x 2 positions at the run's image size (a final 1 x 1 map has no texture), the default
  content layer the second deepest of them. The run's own mean / std normalise the input; its channel count is
  honoured (RGB input to a gray run is converted to luma).

Every :class:`FeatureNet` takes images in [-1, 1], ``(B, 3 or 1, H, W)``, and returns only the layers asked for,
stopping the forward pass at the deepest of them.

The losses (:func:`gram`, :func:`style_loss`, :func:`content_loss`, :func:`tv_loss`) are *relative*: each layer's
squared error is divided by the squared size of its target, so they do not depend on the scale of a network's
activations (a trained VGG, the random network, a small classifier differ by orders of magnitude).
:func:`vislab.tasks.style.gatys.transfer` normalises them further, per image pair, so that one set of weights
balances content and style in any network.

Example:
    >>> import torch
    >>> net = load_feature_net("random")
    >>> feats = net(torch.zeros(1, 3, 32, 32), ["relu1_1", "relu3_1"])
    >>> [tuple(f.shape) for f in feats.values()], net.strides["relu3_1"], min_size(net, ["relu5_1"])
    ([(1, 32, 32, 32), (1, 128, 8, 8)], 4, 32)
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ConfigError, DataError

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
GATYS_CONTENT = ["relu4_2"]
GATYS_STYLE = ["relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1"]
VGG_FILES = {"vgg19": "vgg19-dcbb9e9d.pth", "vgg16": "vgg16-397923af.pth"}
# torchvision's configurations D and E (vislab.models.classify.vgg.CFGS holds the same): "M" is a 2x2 pool
VGG_CFGS: dict[str, list[int | str]] = {
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}
RANDOM_WIDTHS = (32, 64, 128, 256, 256)  # channels of the random network's 5 blocks (2 convs each)
RANDOM_SEED = 0
MIN_POSITIONS = 2  # the deepest chosen layer must be at least this many pixels on each side (see min_size)
SPECS = "vgg19:FILE, vgg16:FILE, auto, random or a vislab classify run folder / checkpoint"


class _Stop(Exception):
    """Raised by a hook once the deepest requested layer has been computed (ends the forward pass early)."""


class FeatureNet(nn.Module):
    """A frozen CNN that returns named activations: ``net(x, layers) -> {layer: (B, C_l, H_l, W_l)}``.

    Args:
        name: what it is, for messages and reports (``vgg19:/path/file.pth``, ``random``, ``classify:RUN``).
        body: an ``nn.Sequential`` run in order; ``names`` maps its indices to layer names.
        names: ``{index in body: layer name}`` for every selectable layer.
        strides: ``{layer: total downsampling factor}``.
        mean, std: the input normalisation the backbone expects (on the [0, 1] scale), one value per input channel.
        in_chans: the input channels of the backbone (1 or 3); inputs of the other count are converted.
        default_content, default_style: the layers the losses use when none are asked for.
        pretrained: whether the weights were learned (False for the random network).
        note: a line for the user (e.g. why the random network is used), or ``""``.

    Attributes:
        layers: all selectable layer names, shallow to deep.
    """

    def __init__(self, name: str, body: nn.Module | None, names: dict[int, str], strides: dict[str, int], mean: Sequence[float],
                 std: Sequence[float], in_chans: int = 3, default_content: Sequence[str] = (), default_style: Sequence[str] = (),
                 pretrained: bool = True, note: str = ""):
        super().__init__()
        self.name, self.body, self.in_chans, self.pretrained, self.note = name, body, int(in_chans), pretrained, note
        self._index = {n: i for i, n in names.items()}
        self.layers = [names[i] for i in sorted(names)] if names else list(strides)
        self.strides = dict(strides)
        self.default_content, self.default_style = list(default_content), list(default_style)
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, -1, 1, 1), persistent=False)
        self._min_cache: dict[str, int] = {}

    def freeze(self) -> FeatureNet:
        for p in self.parameters():
            p.requires_grad_(False)
        for m in self.modules():
            if hasattr(m, "inplace"):  # an in-place ReLU would overwrite an activation the losses still need
                m.inplace = False
        return self.eval()

    def train(self, mode: bool = True) -> FeatureNet:  # always in eval mode: batch norm uses its running statistics
        return super().train(False)

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def check_layers(self, layers: Iterable[str], what: str = "layer") -> list[str]:
        """``layers`` as a list, all known; else a ConfigError listing the available names."""
        layers = list(layers)
        for n in layers:
            if n not in self.strides:
                from vislab.core.errors import did_you_mean

                raise ConfigError(f"{what}: expected a layer of {self.name} ({', '.join(self.layers)}), got '{n}'{did_you_mean(n, self.layers)}")
        return layers

    def preprocess(self, x: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> the backbone's normalised input (channels converted: 1 -> 3 repeated, 3 -> 1 luma)."""
        x = (x.float() + 1) / 2
        if x.shape[1] != self.in_chans:
            if x.shape[1] == 1:
                x = x.repeat(1, self.in_chans, 1, 1)
            elif x.shape[1] == 3 and self.in_chans == 1:  # PIL's "L" conversion (ITU-R 601-2 luma), as classify runs read
                x = (x * torch.tensor([0.299, 0.587, 0.114], device=x.device).view(1, 3, 1, 1)).sum(1, keepdim=True)
            else:
                from vislab.core.errors import ShapeError

                raise ShapeError(f"feature net {self.name}", "(B, 1 or 3, H, W) images", tuple(x.shape))
        return (x - self.mean) / self.std

    def forward(self, x: torch.Tensor, layers: Sequence[str] | None = None) -> dict[str, torch.Tensor]:
        """Activations of ``layers`` (default: the default content + style layers) for images ``x`` in [-1, 1]."""
        wanted = self.check_layers(layers if layers is not None else dict.fromkeys(self.default_content + self.default_style))
        if not wanted:
            return {}
        return self._extract(self.preprocess(x), wanted)

    def _extract(self, x: torch.Tensor, wanted: list[str]) -> dict[str, torch.Tensor]:
        idx = {self._index[n]: n for n in wanted}
        last = max(idx)
        out: dict[str, torch.Tensor] = {}
        for i, layer in enumerate(self.body):
            x = layer(x)
            if i in idx:
                out[idx[i]] = x
            if i == last:
                break
        return {n: out[n] for n in wanted}

    def deepest(self, layers: Iterable[str]) -> str:
        """The deepest of ``layers`` (the one with the largest stride; the later one on a tie)."""
        order = {n: i for i, n in enumerate(self.layers)}
        return max(self.check_layers(layers), key=lambda n: (self.strides[n], order[n]))

    def extra_repr(self) -> str:
        return f"name={self.name!r}, layers={len(self.layers)}, pretrained={self.pretrained}"


class _HookedFeatureNet(FeatureNet):
    """A classifier's activations caught by forward hooks on named submodules (a classify run's backbone)."""

    def __init__(self, name: str, model: nn.Module, modules: list[str], strides: dict[str, int], **kw):
        super().__init__(name, None, {}, strides, **kw)
        self.model = model
        self.layers = list(modules)

    def _extract(self, x: torch.Tensor, wanted: list[str]) -> dict[str, torch.Tensor]:
        out: dict[str, torch.Tensor] = {}
        pending = set(wanted)

        def hook(name: str):
            def fn(_m, _i, o):
                if name in pending:
                    out[name] = o
                    pending.discard(name)
                    if not pending:
                        raise _Stop
            return fn

        handles = [self.model.get_submodule(n).register_forward_hook(hook(n)) for n in wanted]
        try:
            run = getattr(self.model, "forward_features", self.model)
            run(x)
        except _Stop:
            pass
        finally:
            for h in handles:
                h.remove()
        if pending:
            raise ConfigError(f"feature net {self.name}: expected its forward pass to reach layer(s) {', '.join(sorted(pending))}, got none")
        return {n: out[n] for n in wanted}


# --------------------------------------------------------------------------------------------
# losses
# --------------------------------------------------------------------------------------------
def gram(f: torch.Tensor) -> torch.Tensor:
    """The Gram matrix of feature maps ``(B, C, H, W)`` -> ``(B, C, C)``, normalised by ``C * H * W``.

    Example:
        >>> gram(torch.ones(1, 2, 3, 3))
        tensor([[[0.5000, 0.5000],
                 [0.5000, 0.5000]]])
    """
    b, c, h, w = f.shape
    v = f.reshape(b, c, h * w).float()
    return torch.bmm(v, v.transpose(1, 2)) / (c * h * w)


def relative_error(a: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``||a - target||^2 / ||target||^2`` (as means, so shapes need only agree)."""
    return (a - target).pow(2).mean() / target.pow(2).mean().clamp_min(1e-12)


def layer_weights(names: Sequence[str], weights: dict[str, float] | Sequence[float] | None) -> dict[str, float]:
    """Per-layer weights by name: ``None`` -> ``1 / L`` each; a dict (missing layers 0) or one value per layer."""
    if weights is None:
        return {n: 1.0 / max(len(names), 1) for n in names}
    if isinstance(weights, dict):
        return {n: float(weights.get(n, 0.0)) for n in names}
    weights = list(weights)
    if len(weights) != len(names):
        raise ConfigError(f"layer weights: expected one per layer ({len(names)}), got {len(weights)}")
    return dict(zip(names, map(float, weights), strict=True))


def style_loss(feats: dict[str, torch.Tensor], target_grams: dict[str, torch.Tensor],
               weights: dict[str, float] | Sequence[float] | None = None) -> torch.Tensor:
    """``sum_l w_l * ||G_l - A_l||^2 / ||A_l||^2``: the relative Gram error of each layer in ``target_grams``.

    ``G_l = gram(feats[l])``, ``A_l`` the target Gram; ``w_l`` defaults to ``1 / L`` (Gatys et al.'s equal weights),
    so the loss is the mean relative Gram error: 0 for a perfect match, about 1 for a featureless image.
    """
    names = list(target_grams)
    w = layer_weights(names, weights)
    total = feats[names[0]].new_zeros(())
    for n in names:
        if w[n]:
            total = total + w[n] * relative_error(gram(feats[n]), target_grams[n])
    return total


def content_loss(feats: dict[str, torch.Tensor], target_feats: dict[str, torch.Tensor],
                 weights: dict[str, float] | Sequence[float] | None = None) -> torch.Tensor:
    """``sum_l w_l * ||F_l - P_l||^2 / ||P_l||^2``: the relative feature error of each layer in ``target_feats``
    (``w_l`` = ``1 / L`` by default)."""
    names = list(target_feats)
    w = layer_weights(names, weights)
    total = feats[names[0]].new_zeros(())
    for n in names:
        if w[n]:
            total = total + w[n] * relative_error(feats[n].float(), target_feats[n].float())
    return total


def tv_loss(x: torch.Tensor) -> torch.Tensor:
    """Total variation: the mean squared difference of horizontally and vertically neighbouring pixels (summed).

    Example:
        >>> float(tv_loss(torch.zeros(1, 3, 4, 4)))
        0.0
    """
    dh = (x[..., 1:, :] - x[..., :-1, :]).pow(2).mean() if x.shape[-2] > 1 else x.new_zeros(())
    dw = (x[..., :, 1:] - x[..., :, :-1]).pow(2).mean() if x.shape[-1] > 1 else x.new_zeros(())
    return dh + dw


def min_size(net: FeatureNet, layers: Iterable[str]) -> int:
    """The smallest image side for which every one of ``layers`` has at least ``MIN_POSITIONS`` (2) pixels per side.

    One pixel is the hard limit of a forward pass, but a Gram matrix of a 1 x 1 map is the outer product of a single
    feature vector: it holds no spatial statistics, and matching it only copies one vector. 2 x 2 is the least that
    still averages over positions, so it is the bar (for VGG's ``relu5_1``, 1/16 of the image: 32 px). Found by
    trying sizes on a dry forward pass (exact for unpadded convs too), starting at ``2 * stride``.
    """
    deepest = net.deepest(layers)
    if deepest in net._min_cache:
        return net._min_cache[deepest]
    n = max(MIN_POSITIONS * net.strides[deepest], MIN_POSITIONS)
    for _ in range(512):
        try:
            with torch.no_grad():
                f = net._extract(torch.zeros(1, net.in_chans, n, n, device=net.device), [deepest])[deepest]
            if min(f.shape[-2:]) >= MIN_POSITIONS:
                break
        except RuntimeError:  # "input size too small" from a conv or pool
            pass
        n += 1
    net._min_cache[deepest] = n
    return n


# --------------------------------------------------------------------------------------------
# VGG
# --------------------------------------------------------------------------------------------
def vgg_names(cfg: Sequence[int | str]) -> tuple[dict[int, str], dict[str, int]]:
    """torchvision ``features`` indices -> ``conv1_1, relu1_1, ..., pool1, ...``, and each name's stride.

    Example:
        >>> names, strides = vgg_names(VGG_CFGS["vgg19"])
        >>> names[0], names[1], names[4], names[21], names[22], strides["relu4_1"], len(names)
        ('conv1_1', 'relu1_1', 'pool1', 'conv4_2', 'relu4_2', 8, 37)
    """
    names: dict[int, str] = {}
    strides: dict[str, int] = {}
    i, block, conv = 0, 1, 1
    for v in cfg:
        if v == "M":
            names[i] = f"pool{block}"
            strides[names[i]] = 2**block
            i, block, conv = i + 1, block + 1, 1
        else:
            for kind in ("conv", "relu"):
                names[i] = f"{kind}{block}_{conv}"
                strides[names[i]] = 2 ** (block - 1)
                i += 1
            conv += 1
    return names, strides


def vgg_body(cfg: Sequence[int | str], in_chans: int = 3, pool: str = "avg") -> nn.Sequential:
    """VGG's conv stack with torchvision's indices (``features.N`` loads into it); ``pool``: max (VGG's) or avg."""
    if pool not in ("max", "avg"):
        raise ConfigError(f"--pool: expected max or avg, got '{pool}'")
    layers: list[nn.Module] = []
    c = in_chans
    for v in cfg:
        if v == "M":
            layers.append(nn.MaxPool2d(2, 2) if pool == "max" else nn.AvgPool2d(2, 2))
        else:
            layers += [nn.Conv2d(c, int(v), 3, padding=1), nn.ReLU()]
            c = int(v)
    return nn.Sequential(*layers)


def _read_state_dict(path: Path, spec: str) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        try:
            return load_file(str(path))
        except (SafetensorError, OSError, ValueError) as e:
            raise DataError(f"--features {spec}: expected a readable safetensors file, got an unreadable one ({e})") from None
    import pickle
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise DataError(f"--features {spec}: expected a state dict loadable with weights_only=True (tensors only), got a file that "
                        "needs code execution or is not a torch file; convert it to .safetensors once if you trust it") from None
    except Exception as e:  # noqa: BLE001 - a broken or foreign file: one clear line for all
        first = str(e).strip().splitlines()[0][:160] if str(e).strip() else type(e).__name__
        raise DataError(f"--features {spec}: expected a torch state dict file, got an unreadable one ({first})") from None
    for key in ("state_dict", "model", "model_state_dict"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise DataError(f"--features {spec}: expected a state dict (name -> tensor), got {type(obj).__name__}")
    return {k: v for k, v in obj.items() if torch.is_tensor(v)}


def _features_part(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The conv-stack tensors of a VGG state dict, keyed ``N.weight`` / ``N.bias``."""
    for prefix in ("features.", "module.features.", "model.features.", ""):
        part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
        if any(k.split(".")[0].isdigit() for k in part):
            return part
    return {}


def vgg(arch: str, path: str | Path, device: torch.device | str = "cpu", pool: str = "avg", note: str = "") -> FeatureNet:
    """torchvision's ``vgg16`` / ``vgg19`` conv stack with the weights of ``path``.

    Raises:
        DataError: a missing or unreadable file, or one without the conv tensors (names the first missing key) or with
            tensors of other shapes.
    """
    spec = f"{arch}:{path}"
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"--features {spec}: expected a file of torchvision {arch.upper()} weights (e.g. {VGG_FILES[arch]}), got '{p}' (not found)")
    body = vgg_body(VGG_CFGS[arch], 3, pool)
    own = body.state_dict()
    got = _features_part(_read_state_dict(p, spec))
    missing = [k for k in own if k not in got]
    if missing:
        raise DataError(f"--features {spec}: expected a torchvision {arch} state dict with features.* tensors, got one without "
                        f"features.{missing[0]}" + (f" ({len(missing)} of {len(own)} missing)" if len(missing) > 1 else ""))
    bad = next((k for k in own if tuple(got[k].shape) != tuple(own[k].shape)), None)
    if bad is not None:
        raise DataError(f"--features {spec}: expected features.{bad} of shape {tuple(own[bad].shape)} ({arch}), got {tuple(got[bad].shape)}")
    body.load_state_dict({k: got[k].float() for k in own})
    names, strides = vgg_names(VGG_CFGS[arch])
    net = FeatureNet(spec, body, names, strides, IMAGENET_MEAN, IMAGENET_STD, 3, GATYS_CONTENT, GATYS_STYLE, pretrained=True, note=note)
    return net.freeze().to(device)


def hub_vgg19() -> Path:
    """Where torchvision keeps VGG-19's weights: ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG_FILES["vgg19"]


# --------------------------------------------------------------------------------------------
# the random network
# --------------------------------------------------------------------------------------------
def pink_noise(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` RGB images of 1/f noise, ``(n, 3, size, size)`` float64 in [0, 1] (each channel at mean 0.5, std 0.2)."""
    fy = torch.fft.fftfreq(size, dtype=torch.float64).view(-1, 1)
    fx = torch.fft.rfftfreq(size, dtype=torch.float64).view(1, -1)
    amp = 1.0 / torch.sqrt(fx**2 + fy**2).clamp_min(1.0 / size)
    spec = torch.randn(n, 3, size, size // 2 + 1, 2, generator=generator, dtype=torch.float64)
    x = torch.fft.irfft2(torch.complex(spec[..., 0], spec[..., 1]) * amp, s=(size, size))
    x = (x - x.mean((2, 3), keepdim=True)) / x.std((2, 3), keepdim=True).clamp_min(1e-8)
    return (0.5 + 0.2 * x).clamp(0, 1)


class CenteredReLU(nn.Module):
    """``(relu(x) - shift) * scale`` with fixed per-channel ``shift`` / ``scale`` (calibrated once): a ReLU whose output
    has zero mean and unit variance on natural-looking images. Without the centring a Gram matrix of ReLU maps is
    dominated by the outer product of the channel means, and the relative Gram error hardly sees the texture."""

    def __init__(self, channels: int):
        super().__init__()
        self.register_buffer("shift", torch.zeros(channels))
        self.register_buffer("scale", torch.ones(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (F.relu(x) - self.shift.view(1, -1, 1, 1)) * self.scale.view(1, -1, 1, 1)


@torch.no_grad()
def random_net(device: torch.device | str = "cpu", pool: str = "avg", widths: Sequence[int] = RANDOM_WIDTHS, seed: int = RANDOM_SEED,
               note: str = "") -> FeatureNet:
    """The random multi-scale network: 5 blocks of (3x3 conv + centred ReLU) x 2 and a 2x2 pool, ``widths``
    channels, Kaiming-initialised from ``seed``; every conv is calibrated to zero-mean, unit-variance outputs and
    every ReLU to zero-mean, unit-variance outputs (:class:`CenteredReLU`) on a fixed batch of pink noise."""
    if len(widths) != 5:
        raise ConfigError(f"random feature net: expected 5 block widths, got {len(widths)}")
    cfg: list[int | str] = []
    for w in widths:
        cfg += [int(w), int(w), "M"]
    g = torch.Generator().manual_seed(seed)
    body = vgg_body(cfg[:-1], 3, pool)  # no pool after the last block: nothing reads it
    for i, m in enumerate(body):
        if isinstance(m, nn.ReLU):
            body[i] = CenteredReLU(body[i - 1].out_channels)
    # calibrated in float64 and then rounded to float32: the same weights whatever the thread count (whose reduction
    # order changes the last bits of a float32 calibration)
    body = body.double()
    x = (pink_noise(8, 64, g) - torch.tensor(IMAGENET_MEAN, dtype=torch.float64).view(1, 3, 1, 1)) / torch.tensor(IMAGENET_STD, dtype=torch.float64).view(1, 3, 1, 1)
    for m in body:
        if isinstance(m, nn.Conv2d):
            fan_in = m.in_channels * 9
            m.weight.copy_(torch.randn(m.weight.shape, generator=g, dtype=torch.float64) * math.sqrt(2.0 / fan_in))
            m.bias.zero_()
            y = m(x)
            mu, sd = y.mean((0, 2, 3)), y.std((0, 2, 3)).clamp_min(1e-6)
            m.weight.div_(sd.view(-1, 1, 1, 1))
            m.bias.copy_(-mu / sd)
        elif isinstance(m, CenteredReLU):
            y = F.relu(x)
            m.shift.copy_(y.mean((0, 2, 3)))
            m.scale.copy_(1.0 / y.std((0, 2, 3)).clamp_min(1e-6))
        x = m(x)
    body = body.float()
    names, strides = vgg_names(cfg[:-1])
    net = FeatureNet("random", body, names, strides, IMAGENET_MEAN, IMAGENET_STD, 3, GATYS_CONTENT, GATYS_STYLE, pretrained=False, note=note)
    return net.freeze().to(device)


# --------------------------------------------------------------------------------------------
# a vislab classify run
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def classifier(run: str | Path, device: torch.device | str = "cpu") -> FeatureNet:
    """The backbone of a vislab classify run: the last module at each resolution, named by module path.

    Raises:
        CheckpointError: not a readable classify checkpoint.
        ConfigError: a model without spatial feature maps (a ViT).
    """
    from vislab.engine.checkpoint import load_model

    model, state = load_model(run, task="classify")
    model = model.float().eval()
    size = tuple(state.get("img_size") or (32, 32))
    chans = int(state.get("channels") or 3)
    mean = state.get("mean") or [0.5] * chans
    std = state.get("std") or [0.5] * chans
    candidates = list(getattr(model, "feature_modules", ()) or ())
    modules, strides = _probe(model, candidates, chans, size)
    if len(modules) < 2:  # none named, or not maps: take the top-level modules (and those of a ``features`` stack)
        top = [f"features.{n}" for n, _ in model.features.named_children()] if isinstance(getattr(model, "features", None), nn.Sequential) else []
        top += [n for n, _ in model.named_children() if n != "features"]
        more, more_strides = _probe(model, top, chans, size)
        if len(more) > len(modules):
            modules, strides = more, more_strides
    if not modules:
        raise ConfigError(f"--features {run}: expected a CNN classifier with spatial feature maps, got {state.get('model')!r} (none found)")
    # the defaults: the layers with at least 2 x 2 positions at the run's image size (a final 1 x 1 map has no texture)
    usable = [n for n in modules if min(size) // strides[n] >= MIN_POSITIONS] or modules[:1]
    content = [usable[-2] if len(usable) >= 2 else usable[-1]]
    net = _HookedFeatureNet(f"classify:{run}", model, modules, strides, mean=mean, std=std, in_chans=chans, default_content=content,
                            default_style=usable, pretrained=True)
    return net.freeze().to(device)


def _probe(model: nn.Module, names: list[str], chans: int, size: tuple[int, ...]) -> tuple[list[str], dict[str, int]]:
    """Of ``names``, in the order they run, the last one at each spatial resolution whose output is a 4-D map."""
    shapes: list[tuple[str, tuple[int, int]]] = []
    handles = []
    for n in names:
        try:
            mod = model.get_submodule(n)
        except AttributeError:
            continue
        handles.append(mod.register_forward_hook(
            lambda _m, _i, o, n=n: shapes.append((n, tuple(o.shape[-2:]))) if torch.is_tensor(o) and o.ndim == 4 else None))
    try:
        run = getattr(model, "forward_features", model)
        run(torch.zeros(1, chans, *size))
    except RuntimeError:
        pass
    finally:
        for h in handles:
            h.remove()
    last: dict[tuple[int, int], str] = {}
    for n, hw in shapes:
        last.pop(hw, None)
        last[hw] = n  # re-inserted: dict order follows the last module at each resolution
    modules = [n for n in dict.fromkeys(n for n, _ in shapes) if n in last.values()]
    by_name = {n: hw for hw, n in last.items()}
    strides = {n: max(1, round(size[0] / by_name[n][0])) for n in modules}
    return modules, strides


# --------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------
def load_feature_net(spec: str, device: torch.device | str = "cpu", pool: str = "avg") -> FeatureNet:
    """``vgg19:FILE``, ``vgg16:FILE``, ``auto``, ``random`` or a vislab classify run / checkpoint (see the module doc).

    ``pool``: VGG's (and the random network's) pooling, ``avg`` (Gatys et al.'s choice: smoother gradients) or ``max``.

    Raises:
        DataError: a VGG file that is missing, unreadable or of another architecture.
        ConfigError: a spec that is none of these.
        CheckpointError: a run / checkpoint that is not a readable classify one.
    """
    device = torch.device(device)
    if pool not in ("max", "avg"):
        raise ConfigError(f"--pool: expected max or avg, got '{pool}'")
    head, _, rest = spec.partition(":")
    if head in VGG_CFGS and rest:
        return vgg(head, rest, device, pool)
    if spec in ("", "auto"):
        found = hub_vgg19()
        if found.is_file():
            return vgg("vgg19", found, device, pool)
        note = (f"no VGG-19 weights found at {found}: using a randomly initialised multi-scale network (results show texture "
                "statistics, not learned features); pass --features vgg19:FILE")
        return random_net(device, pool, note=note)
    if spec == "random":
        return random_net(device, pool)
    if head in VGG_CFGS:
        raise ConfigError(f"--features: expected {head}:FILE (a torchvision {head} state dict), got '{spec}' (no file)")
    if not Path(spec).expanduser().exists():
        raise ConfigError(f"--features: expected {SPECS}, got '{spec}' (not found)")
    return classifier(spec, device)


def resize_to(x: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bilinear resize of ``(B, C, H, W)`` to ``size`` (antialiased when shrinking); unchanged when already that size."""
    if tuple(x.shape[-2:]) == tuple(size):
        return x
    shrink = size[0] < x.shape[-2] or size[1] < x.shape[-1]
    return F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=shrink)
