"""Trainable inpainting generators, registered by name: `unet`, `ra_unet`, `resnet_cgan`.

One interface for all of them (and for the classical baselines in `inpaint.classical`):

    G = create_generator("unet")
    image = G(occluded, hole)             # [N, 1, 48, 48] in [0, 1], the whole frame
    face = stitch(image, occluded, hole)  # real pixels back outside the hole

The generator never sees hidden pixels: `occluded` is zeroed inside the hole before anything else
(a painted face mask is as invisible to it as the lower-half fill). Optional expression conditioning:
a generator built with `cond_dim=7` also takes `cond` [N, 7], the class distribution an
occluded-face classifier reads from the upper half (or, with a larger `cond_dim`, that classifier's
embedding, brought in through `cond_planes` learned planes); it enters as constant input planes and as a
per-channel bias on the bottleneck, so the decoder can draw the mouth that goes with it.

Default widths keep each generator at about 1.1-1.3 M parameters (2.2-2.6 MB in fp16): three
generators and three classifiers fit `checkpoints/` within `unveil.shipped.CHECKPOINT_BUDGET`.

Order in this file (after timm): building blocks, the shared base class, the three families, the
registered builders.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from unveil.registry import Registry

GENERATORS: Registry[nn.Module] = Registry("generator")


# --------------------------------------------------------------------------- blocks


def conv_bn_relu(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class DoubleConv(nn.Sequential):
    """Two 3x3 conv-BN-ReLU layers (the U-Net stage)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(conv_bn_relu(cin, cout), conv_bn_relu(cout, cout))


class ResidualBlock(nn.Module):
    """conv-BN-ReLU-conv-BN plus a shortcut (1x1 conv when the width changes), then ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.body = nn.Sequential(conv_bn_relu(cin, cout), nn.Conv2d(cout, cout, 3, padding=1, bias=False),
                                  nn.BatchNorm2d(cout))
        self.shortcut = (nn.Identity() if cin == cout else
                         nn.Sequential(nn.Conv2d(cin, cout, 1, bias=False), nn.BatchNorm2d(cout)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class UpConv(nn.Sequential):
    """Resize-convolution: nearest 2x upsampling then a 3x3 conv (no transposed-conv checkerboard)."""

    def __init__(self, cin: int, cout: int):
        super().__init__(nn.Upsample(scale_factor=2, mode="nearest"), conv_bn_relu(cin, cout))


class AttentionGate(nn.Module):
    """Additive attention gate on a skip connection (Oktay et al. 2018, as in RA-UNet).

    The decoder's features `g` (the gating signal, already at the skip's resolution) decide which
    skip positions pass: alpha = sigmoid(psi(relu(W_g g + W_x x))), output x * alpha.
    """

    def __init__(self, gate_channels: int, skip_channels: int, inner_channels: int):
        super().__init__()
        self.w_g = nn.Sequential(nn.Conv2d(gate_channels, inner_channels, 1, bias=False),
                                 nn.BatchNorm2d(inner_channels))
        self.w_x = nn.Sequential(nn.Conv2d(skip_channels, inner_channels, 1, bias=False),
                                 nn.BatchNorm2d(inner_channels))
        self.psi = nn.Sequential(nn.Conv2d(inner_channels, 1, 1), nn.BatchNorm2d(1), nn.Sigmoid())

    def forward(self, g: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return x * self.psi(F.relu(self.w_g(g) + self.w_x(x)))


# --------------------------------------------------------------------------- base class


class InpaintGenerator(nn.Module):
    """What every trainable generator shares: input assembly and expression conditioning.

    Subclasses implement `body(x, cond_bias)` where `x` is the assembled input [N, 2 + cond_dim, H, W]
    and `cond_bias(features)` adds the conditioning bias to the bottleneck features.
    """

    bottleneck_channels: int

    def __init__(self, cond_dim: int = 0, cond_planes: int | None = None):
        super().__init__()
        self.cond_dim = int(cond_dim)
        # A long conditioning vector (a classifier's embedding) enters through a few learned planes
        # instead of one constant plane per entry.
        self.cond_planes = nn.Linear(self.cond_dim, int(cond_planes)) if cond_planes and self.cond_dim else None
        self.in_channels = 2 + (int(cond_planes) if self.cond_planes is not None else self.cond_dim)

    def _init_conditioning(self) -> None:
        """Call at the end of a subclass's __init__, once `bottleneck_channels` is known."""
        self.cond_proj = nn.Linear(self.cond_dim, self.bottleneck_channels) if self.cond_dim else None

    def forward(self, occluded: torch.Tensor, hole: torch.Tensor, cond: torch.Tensor | None = None) -> torch.Tensor:
        """Shape: occluded, hole [N, 1, H, W]; cond [N, cond_dim] or None -> image [N, 1, H, W] in [0, 1]."""
        hole = hole.to(occluded.dtype)
        x = [occluded * (1 - hole), hole]      # hidden pixels are zero, whatever the occlusion painted
        if self.cond_dim:
            if cond is None or cond.shape != (occluded.shape[0], self.cond_dim):
                got = None if cond is None else tuple(cond.shape)
                raise ValueError(f"this generator is conditioned: pass cond of shape [N, {self.cond_dim}], got {got}")
            cond = cond.to(occluded.dtype)
            planes = self.cond_planes(cond) if self.cond_planes is not None else cond
            x.append(planes[:, :, None, None].expand(-1, -1, *occluded.shape[-2:]))
        elif cond is not None:
            raise ValueError("this generator was built without conditioning (cond_dim=0); do not pass cond")

        def cond_bias(features: torch.Tensor) -> torch.Tensor:
            if self.cond_proj is None:
                return features
            return features + self.cond_proj(cond).to(features.dtype)[:, :, None, None]

        return torch.sigmoid(self.body(torch.cat(x, 1), cond_bias))

    def body(self, x: torch.Tensor, cond_bias) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError


# --------------------------------------------------------------------------- families


class UNet(InpaintGenerator):
    """Encoder-decoder with skip connections (Ronneberger et al. 2015), sized for 48x48.

    Args:
        widths: channels per level; each level after the first halves the resolution
            (48 -> 24 -> 12 -> 6 with four levels), the last is the bottleneck.
        residual: residual blocks instead of plain double convolutions (RA-UNet).
        attention: attention gates on the skip connections (RA-UNet).
        cond_dim: size of the expression-conditioning vector (0: unconditioned).

    Shape:
        occluded, hole: [N, 1, H, W] with H, W divisible by 2 ** (len(widths) - 1).
    """

    def __init__(self, widths: tuple[int, ...] = (24, 48, 96, 192), residual: bool = False,
                 attention: bool = False, cond_dim: int = 0, cond_planes: int | None = None):
        super().__init__(cond_dim, cond_planes)
        widths = tuple(int(w) for w in widths)
        if len(widths) < 2:
            raise ValueError(f"widths needs at least two levels, got {widths}")
        block = ResidualBlock if residual else DoubleConv
        chans = (self.in_channels, *widths)
        self.encoders = nn.ModuleList(block(chans[i], chans[i + 1]) for i in range(len(widths)))
        self.ups = nn.ModuleList(UpConv(widths[i + 1], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.decoders = nn.ModuleList(block(2 * widths[i], widths[i]) for i in reversed(range(len(widths) - 1)))
        self.gates = (nn.ModuleList(AttentionGate(widths[i], widths[i], max(widths[i] // 2, 1))
                                    for i in reversed(range(len(widths) - 1))) if attention else None)
        self.head = nn.Conv2d(widths[0], 1, 1)
        self.bottleneck_channels = widths[-1]
        self._init_conditioning()

    def body(self, x: torch.Tensor, cond_bias) -> torch.Tensor:
        skips = []
        for i, encoder in enumerate(self.encoders):
            x = encoder(x if i == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        x = cond_bias(skips.pop())
        for k, (up, decoder) in enumerate(zip(self.ups, self.decoders)):
            x = up(x)
            skip = skips.pop()
            if self.gates is not None:
                skip = self.gates[k](x, skip)
            x = decoder(torch.cat([x, skip], 1))
        return self.head(x)


class ResNetGenerator(InpaintGenerator):
    """pix2pix/CycleGAN ResNet generator (Johnson et al. 2016) adapted to 48x48 grayscale.

    7x7 stem, `n_down` stride-2 convolutions, `n_blocks` residual blocks at the lowest resolution
    (12x12 with the defaults: their receptive field covers the whole face), resize-conv upsampling
    (no checkerboard), 7x7 output conv. Reflection padding at the borders, as in pix2pix.
    """

    def __init__(self, ngf: int = 24, n_down: int = 2, n_blocks: int = 6, cond_dim: int = 0,
                 cond_planes: int | None = None):
        super().__init__(cond_dim, cond_planes)
        ngf, n_down, n_blocks = int(ngf), int(n_down), int(n_blocks)
        layers: list[nn.Module] = [nn.ReflectionPad2d(3), nn.Conv2d(self.in_channels, ngf, 7, bias=False),
                                   nn.BatchNorm2d(ngf), nn.ReLU(inplace=True)]
        width = ngf
        for _ in range(n_down):
            layers.append(conv_bn_relu(width, width * 2, stride=2))
            width *= 2
        self.down = nn.Sequential(*layers)
        self.blocks = nn.Sequential(*[_ReflectResBlock(width) for _ in range(n_blocks)])
        up: list[nn.Module] = []
        for _ in range(n_down):
            up.append(UpConv(width, width // 2))
            width //= 2
        up += [nn.ReflectionPad2d(3), nn.Conv2d(width, 1, 7)]
        self.up = nn.Sequential(*up)
        self.bottleneck_channels = ngf * 2 ** n_down
        self._init_conditioning()

    def body(self, x: torch.Tensor, cond_bias) -> torch.Tensor:
        return self.up(self.blocks(cond_bias(self.down(x))))


class _ReflectResBlock(nn.Module):
    """pix2pix's residual block: reflect-pad, conv, BN, ReLU, reflect-pad, conv, BN, plus identity."""

    def __init__(self, width: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), nn.BatchNorm2d(width), nn.ReLU(inplace=True),
            nn.ReflectionPad2d(1), nn.Conv2d(width, width, 3, bias=False), nn.BatchNorm2d(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


# --------------------------------------------------------------------------- registered builders


@GENERATORS.register("unet")
def unet(widths: tuple[int, ...] = (24, 48, 96, 192), cond_dim: int = 0, cond_planes: int | None = None) -> UNet:
    """Plain U-Net: double-conv stages, max-pool down, resize-conv up, skip connections (~1.2 M)."""
    return UNet(tuple(widths), residual=False, attention=False, cond_dim=cond_dim, cond_planes=cond_planes)


@GENERATORS.register("ra_unet")
def ra_unet(widths: tuple[int, ...] = (24, 48, 96, 192), cond_dim: int = 0, cond_planes: int | None = None) -> UNet:
    """Residual-attention U-Net (Hosen & Islam 2022, "Masked Face Inpainting Through Residual
    Attention UNet"): residual blocks in every stage, attention gates on the skips (~1.3 M)."""
    return UNet(tuple(widths), residual=True, attention=True, cond_dim=cond_dim, cond_planes=cond_planes)


@GENERATORS.register("resnet_cgan")
def resnet_cgan(ngf: int = 24, n_down: int = 2, n_blocks: int = 6, cond_dim: int = 0,
                cond_planes: int | None = None) -> ResNetGenerator:
    """pix2pix-style ResNet generator, trained against the `patchgan` discriminator (~1.1 M)."""
    return ResNetGenerator(ngf, n_down, n_blocks, cond_dim, cond_planes)


def create_generator(name: str, **kwargs) -> nn.Module:
    """Build a registered generator; an unknown name raises an error listing the valid ones."""
    return GENERATORS.create(name, **kwargs)
