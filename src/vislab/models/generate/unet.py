"""The denoising U-Net of DDPM (Ho et al., 2020), simplified to CPU scale: ``(x_t, t[, y]) -> predicted noise``.

A sinusoidal embedding of the timestep ``t`` goes through an MLP (``4 * width`` units); with ``num_classes > 0`` a
class embedding is added to it (index ``num_classes`` is the "no class" token of classifier-free guidance). Each
level holds ``num_res`` residual blocks that receive that embedding; levels are joined by a stride-2 convolution
going down and by nearest upsampling + convolution going up, the decoder concatenates the encoder's activations
(skip connections), and one single-head self-attention block sits at the lowest resolution (``attn=True``).

The network itself is built by :func:`vislab.models.generate.diffusion.ddpm`, which wraps it with the noise schedule.

Example:
    >>> import torch
    >>> net = UNet(in_chans=1, img_size=28, width=8, num_classes=10)
    >>> net(torch.randn(2, 1, 28, 28), torch.tensor([0, 999]), torch.tensor([3, 10])).shape
    torch.Size([2, 1, 28, 28])
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from vislab.core.errors import ModelError


def norm(c: int) -> nn.GroupNorm:
    """GroupNorm with the largest group count <= 8 that divides ``c``."""
    return nn.GroupNorm(max(g for g in range(1, min(8, c) + 1) if c % g == 0), c)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of timesteps ``(B,) -> (B, dim)``: ``[cos(t w_k), sin(t w_k)]``, ``w_k = 10000^(-k/half)``."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=1)
    return F.pad(emb, (0, dim % 2))


class ResBlock(nn.Module):
    """GroupNorm, SiLU, conv3x3, + projected embedding, GroupNorm, SiLU, dropout, conv3x3; residual (1x1 if cin != cout)."""

    def __init__(self, cin: int, cout: int, temb_dim: int, dropout: float = 0.0):
        super().__init__()
        self.norm1, self.conv1 = norm(cin), nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(temb_dim, cout)
        self.norm2, self.drop, self.conv2 = norm(cout), nn.Dropout(dropout), nn.Conv2d(cout, cout, 3, padding=1)
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(self.drop(F.silu(self.norm2(h))))
        return h + self.skip(x)


class AttnBlock(nn.Module):
    """Single-head self-attention over the ``H * W`` positions: GroupNorm, 1x1 qkv, softmax(q k^T / sqrt(c)) v, 1x1,
    residual."""

    def __init__(self, c: int):
        super().__init__()
        self.norm, self.qkv, self.proj = norm(c), nn.Conv2d(c, 3 * c, 1), nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, c, h * w).transpose(-1, -2).unbind(1)  # 3 x (B, HW, C)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(C)) v
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, h, w))


class UNet(nn.Module):
    """``forward(x (B, C, H, W), t (B,) long, y (B,) long | None) -> eps (B, C, H, W)``; see the module docstring."""

    def __init__(self, in_chans: int = 1, img_size: int = 32, width: int = 32, mults=(1, 2, 2), num_res: int = 1,
                 attn: bool = True, num_classes: int = 0, dropout: float = 0.0):
        super().__init__()
        mults = tuple(mults)
        if not mults or min(mults) < 1 or min(in_chans, width) < 1 or num_res < 1 or num_classes < 0:
            raise ModelError(f"UNet: expected in_chans, width, num_res, mults >= 1 and num_classes >= 0, got in_chans="
                             f"{in_chans}, width={width}, mults={mults}, num_res={num_res}, num_classes={num_classes}")
        if not 0.0 <= dropout < 1.0:
            raise ModelError(f"UNet: expected dropout in [0, 1), got {dropout}")
        factor = 2 ** (len(mults) - 1)
        if img_size < factor or img_size % factor:
            raise ModelError(f"UNet: expected img_size divisible by 2^(len(mults)-1) = {factor}, got {img_size}")
        self.in_chans, self.img_size, self.width, self.num_classes = in_chans, img_size, width, num_classes
        self.factor = factor
        temb = 4 * width
        self.time_mlp = nn.Sequential(nn.Linear(width, temb), nn.SiLU(), nn.Linear(temb, temb))
        self.class_emb = nn.Embedding(num_classes + 1, temb) if num_classes else None

        self.conv_in = nn.Conv2d(in_chans, width, 3, padding=1)
        # Encoder: per level, num_res blocks, whose output is kept for the decoder, then a stride-2 conv.
        self.down, self.downsample = nn.ModuleList(), nn.ModuleList()
        chans, skips = width, []
        for i, m in enumerate(mults):
            blocks = [ResBlock(chans if j == 0 else width * m, width * m, temb, dropout) for j in range(num_res)]
            self.down.append(nn.ModuleList(blocks))
            chans = width * m
            skips.append(chans)
            if i < len(mults) - 1:
                self.downsample.append(nn.Conv2d(chans, chans, 3, stride=2, padding=1))
        self.mid = nn.ModuleList([ResBlock(chans, chans, temb, dropout), ResBlock(chans, chans, temb, dropout)])
        self.attn = AttnBlock(chans) if attn else nn.Identity()
        # Decoder: per level, concatenate the skip, num_res blocks, then upsample (nearest) + conv to the next width.
        self.up, self.upsample = nn.ModuleList(), nn.ModuleList()
        for i in reversed(range(len(mults))):
            cout = width * mults[i]
            blocks = [ResBlock(chans + skips.pop() if j == 0 else cout, cout, temb, dropout) for j in range(num_res)]
            self.up.append(nn.ModuleList(blocks))
            chans = cout
            if i > 0:
                nxt = width * mults[i - 1]
                up = nn.Upsample(scale_factor=2, mode="nearest")
                self.upsample.append(nn.Sequential(up, nn.Conv2d(chans, nxt, 3, padding=1)))
                chans = nxt
        self.out = nn.Sequential(norm(chans), nn.SiLU(), nn.Conv2d(chans, in_chans, 3, padding=1))

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if x.ndim != 4 or x.shape[1] != self.in_chans or x.shape[-2] % self.factor or x.shape[-1] % self.factor:
            raise ModelError(f"UNet: expected x of shape (B, {self.in_chans}, H, W), H and W divisible by {self.factor}, "
                             f"got {tuple(x.shape)}")
        emb = self.time_mlp(timestep_embedding(t.reshape(-1).expand(x.shape[0]), self.width))
        if self.class_emb is not None:
            if y is None:
                y = torch.full((x.shape[0],), self.num_classes, dtype=torch.long, device=x.device)
            elif y.numel() and (int(y.min()) < 0 or int(y.max()) > self.num_classes):
                raise ModelError(f"UNet: expected class ids in [0, {self.num_classes}] ({self.num_classes} = no class), "
                                 f"got [{int(y.min())}, {int(y.max())}]")
            emb = emb + self.class_emb(y)
        elif y is not None:
            raise ModelError("UNet: expected y=None for an unconditional model (num_classes=0), got class ids")
        h, hs = self.conv_in(x), []
        for i, blocks in enumerate(self.down):
            for block in blocks:
                h = block(h, emb)
            hs.append(h)
            if i < len(self.downsample):
                h = self.downsample[i](h)
        h = self.mid[1](self.attn(self.mid[0](h, emb)), emb)
        for i, blocks in enumerate(self.up):
            h = torch.cat([h, hs.pop()], 1)
            for block in blocks:
                h = block(h, emb)
            if i < len(self.upsample):
                h = self.upsample[i](h)
        return self.out(h)
