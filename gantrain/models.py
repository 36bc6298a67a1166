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

With ``skip_z`` (the training default) every BatchNorm of G takes its scale
and shift from z and the one-hot class (BigGAN's skip-z) instead of from the
class alone: choices a sample shares across its area, like a shape's colour,
then reach every layer (docs/GANTRAIN.md, Measured numbers).
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


class LatentBatchNorm2d(nn.Module):
    """BatchNorm without its own affine, followed by a scale and shift
    computed from G's whole input code (z and the one-hot class): BigGAN's
    skip-z conditional BatchNorm. Global choices drawn from z (a shape's
    colour, its size) then reach every layer directly instead of having to
    survive the upsampling path."""

    def __init__(self, num_features: int, code_size: int):
        super().__init__()
        self.norm = nn.BatchNorm2d(num_features, affine=False)
        self.gain = nn.Linear(code_size, num_features)
        self.bias = nn.Linear(code_size, num_features)

    def forward(self, x: torch.Tensor, code: torch.Tensor) -> torch.Tensor:
        gain = 1.0 + self.gain(code)[:, :, None, None]
        return self.norm(x) * gain + self.bias(code)[:, :, None, None]


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
        if config.skip_z:
            self.norms = nn.ModuleList(LatentBatchNorm2d(w, z_channels) for w in widths)
        elif config.conditional:
            self.norms = nn.ModuleList(ConditionalBatchNorm2d(w, config.num_classes) for w in widths)
        else:
            self.norms = nn.ModuleList(nn.BatchNorm2d(w) for w in widths)
        self.to_image = nn.ConvTranspose2d(widths[-1], config.channels, 4, 2, 1, bias=False)
        scale = torch.tensor(config.scale, dtype=torch.float32)
        offset = torch.tensor(config.offset, dtype=torch.float32)
        # pixel = (t + 1) / 2; normalized = (pixel - offset) / scale.
        self.register_buffer("out_gain", (0.5 / scale).view(1, -1, 1, 1))
        self.register_buffer("out_bias", ((0.5 - offset) / scale).view(1, -1, 1, 1))
        # From the config's numbers, not the buffers: the model can then be
        # built on the meta device (checkpoint shapes are checked that way).
        gains = [0.5 / s for s in config.scale]
        biases = [(0.5 - o) / s for o, s in zip(config.offset, config.scale)]
        self._identity_output = all(abs(g - 1.0) <= 1e-8 + 1e-5 for g in gains) and all(abs(b) <= 1e-8 for b in biases)
        init_weights(self)

    def forward(self, z: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        h = z.view(z.shape[0], -1, 1, 1)
        if self.num_classes:
            one_hot = F.one_hot(labels, self.num_classes).to(h.dtype).view(h.shape[0], -1, 1, 1)
            h = torch.cat([h, one_hot], dim=1)
        code = h.flatten(1)  # [z, one-hot class]: what skip-z's norms read
        for block, norm in zip(self.blocks, self.norms):
            h = block(h)
            if self.config.skip_z:
                h = norm(h, code)
            elif self.num_classes:
                h = norm(h, labels)
            else:
                h = norm(h)
            h = F.relu(h)
        x = torch.tanh(self.to_image(h))
        if not self._identity_output:
            x = x * self.out_gain + self.out_bias
        return x


def _project(
    base: torch.Tensor, features: torch.Tensor, embed: nn.Embedding | None, labels: torch.Tensor | None,
    wrong_labels: torch.Tensor | None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Add the class projection <embed(y), features> to the unconditional logit.

    With ``wrong_labels`` the same features are also projected on other
    classes: the "real image, wrong class" logits of a matching-aware
    discriminator, at the cost of one embedding lookup (the body runs once).
    """
    if embed is None:
        return base if wrong_labels is None else (base, base)
    logits = base + (embed(labels) * features).sum(dim=1)
    if wrong_labels is None:
        return logits
    return logits, base + (embed(wrong_labels) * features).sum(dim=1)


def _aux_head(config: ModelConfig, features: int) -> nn.Linear | None:
    """The auxiliary classifier (AC-GAN) on D's pooled features, when asked for:
    one linear layer to class logits, trained from scratch with D."""
    return nn.Linear(features, config.num_classes) if config.aux_classifier else None


def _with_aux(out, aux: nn.Linear | None, features: torch.Tensor, with_aux: bool):
    """D's output, and with ``with_aux`` also the auxiliary class logits [B, K]."""
    if not with_aux:
        return out
    if aux is None:
        raise ValueError("with_aux: this discriminator has no auxiliary classifier (ModelConfig.aux_classifier)")
    return out, aux(features)


class Discriminator(nn.Module):
    """The paper's DCGAN discriminator (``arch="dcgan"``): strided 4x4 convolutions.

    images [B, C, H, W] (and labels [B] when conditional) -> logits [B].
    """

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
        self.aux = _aux_head(config, widths[-1])
        init_weights(self)
        if config.spectral_norm:
            heads = [m for m in (self.embed, self.aux) if m is not None]
            for module in [*self.blocks, self.to_logit, *heads]:
                parametrizations.spectral_norm(module)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, wrong_labels: torch.Tensor | None = None,
        with_aux: bool = False,
    ):
        """Logits [B]; with ``wrong_labels`` also the logits of the same images
        under those labels (one pass through the body, see ``_project``); with
        ``with_aux`` a pair (that output, auxiliary class logits [B, K])."""
        h = x
        for block, norm in zip(self.blocks, self.norms):
            h = F.leaky_relu(norm(block(h)), 0.2)
        base = self.to_logit(h).flatten()
        # Projection: features summed over the 4x4 map, dotted with the class embedding.
        features = h.sum(dim=(2, 3))
        return _with_aux(_project(base, features, self.embed, labels, wrong_labels), self.aux, features, with_aux)


class PoolDiscriminator(nn.Module):
    """A discriminator that sees outlines (``arch="pool"``, the default).

    Per stage a 3x3 convolution with LeakyReLU, then a 2x2 max-pool (32 ->
    16 -> 8 -> 4 at 32 px), a last 3x3 convolution to 8 * ndf channels, a sum
    over the 4x4 map, and a linear logit plus the class projection. Why not the
    paper's strided 4x4 convolutions: on synth:shapes (random pose, scale and
    colour) that body learned "a coloured object on a background" and ignored
    the outline that tells a square from a circle, so conditional samples were
    classified as asked only 20-35% of the time; 3x3 convolutions with
    max-pooling (what a classifier of these shapes uses) keep edges through the
    downsampling. Max-pooling is also cheap, which matters on a CPU.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        layers: list[nn.Module] = []
        c_in, size, i = config.channels, config.image_size, 0
        while size > 4:
            c_out = config.ndf * min(2**i, 8)
            layers += [nn.Conv2d(c_in, c_out, 3, padding=1), nn.LeakyReLU(0.2), nn.MaxPool2d(2)]
            c_in, size, i = c_out, size // 2, i + 1
        features = config.ndf * 8
        layers += [nn.Conv2d(c_in, features, 3, padding=1), nn.LeakyReLU(0.2)]
        self.body = nn.Sequential(*layers)
        self.to_logit = nn.Linear(features, 1)
        self.embed = nn.Embedding(config.num_classes, features) if config.conditional else None
        self.aux = _aux_head(config, features)
        # PyTorch's default (He-style) initialisation for the body: with no
        # normalisation, N(0, 0.02) would shrink the signal at each of its layers.
        if self.embed is not None:
            nn.init.normal_(self.embed.weight, 0.0, 0.02)
        if config.spectral_norm:
            heads = [m for m in (self.embed, self.aux) if m is not None]
            for module in [m for m in self.body if isinstance(m, nn.Conv2d)] + [self.to_logit] + heads:
                parametrizations.spectral_norm(module)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, wrong_labels: torch.Tensor | None = None,
        with_aux: bool = False,
    ):
        """Logits [B] (and, with ``wrong_labels``, those under the wrong labels;
        with ``with_aux``, paired with the auxiliary class logits)."""
        h = self.body(x).sum(dim=(2, 3))
        return _with_aux(_project(self.to_logit(h).flatten(), h, self.embed, labels, wrong_labels), self.aux, h, with_aux)


class _DownBlock(nn.Module):
    """Residual block of the ResNet discriminator: two 3x3 convolutions
    (pre-activation except on the image itself), average-pool when downsampling,
    and a 1x1 shortcut when the shape changes."""

    def __init__(self, c_in: int, c_out: int, down: bool, first: bool):
        super().__init__()
        self.first, self.down = first, down
        self.conv1 = nn.Conv2d(c_in, c_out, 3, padding=1)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, padding=1)
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if (c_in != c_out or down) else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x if self.first else F.relu(x)
        h = self.conv2(F.relu(self.conv1(h)))
        s = x
        if self.first:  # the image: pool first, then project (SNGAN's optimised block)
            h = F.avg_pool2d(h, 2)
            s = self.shortcut(F.avg_pool2d(s, 2))
            return h + s
        if self.down:
            h = F.avg_pool2d(h, 2)
        if self.shortcut is not None:
            s = self.shortcut(s)
            if self.down:
                s = F.avg_pool2d(s, 2)
        return h + s


class ResNetDiscriminator(nn.Module):
    """SNGAN/BigGAN-CIFAR style ResNet discriminator (``arch="resnet"``).

    Residual blocks of width 2 * ndf halve the image down to 8x8 (two more at
    8x8), then ReLU, a sum over space and a linear logit plus the projection.
    Meant to be used with ``spectral_norm`` and the hinge loss.
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        width = config.ndf * 2
        n_down = int(math.log2(config.image_size)) - 3  # down to 8x8
        blocks = [_DownBlock(config.channels, width, True, True)]
        blocks += [_DownBlock(width, width, True, False) for _ in range(n_down - 1)]
        blocks += [_DownBlock(width, width, False, False) for _ in range(2)]
        self.blocks = nn.Sequential(*blocks)
        self.to_logit = nn.Linear(width, 1)
        self.embed = nn.Embedding(config.num_classes, width) if config.conditional else None
        self.aux = _aux_head(config, width)
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
        if self.embed is not None:
            nn.init.xavier_uniform_(self.embed.weight)
        if config.spectral_norm:
            for module in [m for m in self.modules() if isinstance(m, (nn.Conv2d, nn.Linear, nn.Embedding))]:
                parametrizations.spectral_norm(module)

    def forward(
        self, x: torch.Tensor, labels: torch.Tensor | None = None, wrong_labels: torch.Tensor | None = None,
        with_aux: bool = False,
    ):
        """Logits [B] (and, with ``wrong_labels``, those under the wrong labels;
        with ``with_aux``, paired with the auxiliary class logits)."""
        h = F.relu(self.blocks(x)).sum(dim=(2, 3))
        return _with_aux(_project(self.to_logit(h).flatten(), h, self.embed, labels, wrong_labels), self.aux, h, with_aux)


DISCRIMINATORS = {"dcgan": Discriminator, "pool": PoolDiscriminator, "resnet": ResNetDiscriminator}


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) weights, BatchNorm scale N(1, 0.02)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d) and m.affine:
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)
        elif isinstance(m, LatentBatchNorm2d):
            for linear in (m.gain, m.bias):
                nn.init.normal_(linear.weight, 0.0, 0.02)
                nn.init.zeros_(linear.bias)
        elif isinstance(m, ConditionalBatchNorm2d):
            nn.init.normal_(m.gain.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias.weight)
        elif isinstance(m, Discriminator) and m.embed is not None:
            nn.init.normal_(m.embed.weight, 0.0, 0.02)


def build_models(config: ModelConfig) -> tuple[Generator, nn.Module]:
    """A freshly initialised generator and discriminator for ``config``
    (the discriminator's body chosen by ``config.arch``)."""
    config.validate()
    return Generator(config), DISCRIMINATORS[config.arch](config)


def count_parameters(module: nn.Module) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
