"""The Radford et al. DCGAN and its class-conditional variant.

The architecture follows the paper (and pytorch/examples' dcgan): transposed
4x4 convolutions with BatchNorm and ReLU in the generator, strided 4x4
convolutions with LeakyReLU(0.2) in the discriminator, Tanh output, N(0, 0.02)
initialisation. One layer is added per power of two, so the same code builds
32, 64 and 128 px models (64 px is exactly the paper's network).

The conditional variant feeds the label to the generator twice: as a one-hot
code concatenated to z, and through conditional BatchNorm (a per-class scale
and shift after each normalisation). An earlier version concatenated a learned
N(0, 1) embedding of z's size instead; on the shapes benchmark (H100, 4,000
steps) that generator learned to ignore z -- every sample of a class was the
same image, Frechet distance 93 -- while the one-hot code kept z in use
(distance 21). The
discriminator gets the label through a projection (Miyato & Koyama 2018): the
logit gets an extra term <embed(y), phi(x)>. The discriminator always returns logits, so the
losses can use numerically stable, autocast-safe formulations.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import parametrizations

from gantrain.config import ModelConfig


def _num_upsamplings(image_size: int) -> int:
    # 4x4 after the first layer, then one doubling per layer.
    return int(math.log2(image_size)) - 2


class ConditionalBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a per-class scale and shift."""

    def __init__(self, num_features: int, num_classes: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Embedding(num_classes, num_features)
        self.bias = nn.Embedding(num_classes, num_features)

    def forward(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        gain = self.gain(labels)[:, :, None, None]
        bias = self.bias(labels)[:, :, None, None]
        return self.norm(x) * gain + bias


class Generator(nn.Module):
    """z [B, nz] (and labels [B] when conditional) -> images [B, C, H, W].

    Images are in the dataset's normalized space: Tanh's [-1, 1] is mapped
    affinely onto the range that pixels [0, 1] take after the manifest's
    normalization (the identity for the usual ``minus1-1``).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n_up = _num_upsamplings(config.image_size)
        widths = [config.ngf * 2 ** (n_up - 1 - i) for i in range(n_up)]
        # Conditional: a one-hot class code joins z at the input (fixed, not
        # learned: see the module docstring for why).
        self.num_classes = config.num_classes if config.conditional else 0
        z_channels = config.nz + self.num_classes
        layers = [nn.ConvTranspose2d(z_channels, widths[0], 4, 1, 0, bias=False)]
        layers += [nn.ConvTranspose2d(widths[i], widths[i + 1], 4, 2, 1, bias=False) for i in range(n_up - 1)]
        self.blocks = nn.ModuleList(layers)
        if config.conditional:
            self.norms = nn.ModuleList(ConditionalBatchNorm2d(w, config.num_classes) for w in widths)
        else:
            self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths)
        self.to_image = nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, bias=False)
        scale = torch.tensor(config.scale, dtype=torch.float32)
        offset = torch.tensor(config.offset, dtype=torch.float32)
        # pixel = (t + 1) / 2; normalized = (pixel - offset) / scale.
        self.register_buffer("out_gain", (0.5 / scale).view(1, -1, 1, 1))
        self.register_buffer("out_bias", ((0.5 - offset) / scale).view(1, -1, 1, 1))
        self._identity_output = bool(torch.allclose(self.out_gain, torch.ones(1)) and torch.allclose(self.out_bias, torch.zeros(1)))
        init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = z.view(z.shape[0], -1, 1, 1)
        if self.num_classes:
            code = F.one_hot(labels, self.num_classes).to(h.dtype).view(h.shape[0], -1, 1, 1)
            h = torch.cat([h, code], dim=1)
        for block, norm in zip(self.blocks, self.norms):
            h = block(h)
            h = norm(h, labels) if self.num_classes else norm(h)
            h = F.relu(h)
        x = torch.tanh(self.to_image(h))
        if not self._identity_output:
            x = x * self.out_gain + self.out_bias
        return x


class Discriminator(nn.Module):
    """images [B, C, H, W] (and labels [B] when conditional) -> logits [B]."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        n_up = _num_upsamplings(config.image_size)
        widths = [config.ndf * 2**i for i in range(n_up)]
        convs = [nn.Conv2d(config.channels, widths[0], 4, 2, 1, bias=False)]
        convs += [nn.Conv2d(widths[i], widths[i + 1], 4, 2, 1, bias=False) for i in range(n_up - 1)]
        # No BatchNorm on the input layer (Radford et al.); none at all with
        # spectral norm, which already controls the layers' Lipschitz constant.
        norms: list[nn.Module] = [nn.Identity()]
        norms += [nn.Identity() if config.spectral_norm else nn.BatchNorm2d(w) for w in widths[1:]]
        self.blocks = nn.ModuleList(convs)
        self.norms = nn.ModuleList(norms)
        self.to_logit = nn.Conv2d(widths[-1], 1, 4, 1, 0, bias=False)
        self.embed = nn.Embedding(config.num_classes, widths[-1]) if config.conditional else None
        init_weights(self)
        if config.spectral_norm:
            for module in [*self.blocks, self.to_logit] + ([self.embed] if self.embed is not None else []):
                parametrizations.spectral_norm(module)

    def forward(self, x: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = x
        for block, norm in zip(self.blocks, self.norms):
            h = F.leaky_relu(norm(block(h)), 0.2)
        logits = self.to_logit(h).flatten()
        if self.embed is not None:
            # Projection: features summed over the 4x4 map, dotted with the class embedding.
            logits = logits + (self.embed(labels) * h.sum(dim=(2, 3))).sum(dim=1)
        return logits


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BatchNorm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, ConditionalBatchNorm2d):
            nn.init.normal_(m.gain.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias.weight)
        elif isinstance(m, Discriminator) and m.embed is not None:
            nn.init.normal_(m.embed.weight, 0.0, 0.02)


def build_models(config: ModelConfig) -> tuple[Generator, Discriminator]:
    """A freshly initialised generator and discriminator for ``config``."""
    config.validate()
    return Generator(config), Discriminator(config)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
