"""GAN losses on discriminator logits.

Both losses take logits (never probabilities): BCE-with-logits is the
numerically stable form of the Sigmoid + BCELoss pair that pytorch/examples
uses, and unlike that pair it is allowed under mixed-precision autocast. The
losses are computed in float32 whatever the autocast dtype.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch.nn import functional as F

LossFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def bce_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator BCE: -log D(x) - log(1 - D(G(z))), averaged over the batch."""
    # softplus(-l) == -log(sigmoid(l)); softplus(l) == -log(1 - sigmoid(l)).
    return F.softplus(-real_logits.float()).mean() + F.softplus(fake_logits.float()).mean()


def bce_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Non-saturating generator loss: -log D(G(z))."""
    return F.softplus(-fake_logits.float()).mean()


def hinge_d_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """Discriminator hinge loss: relu(1 - D(x)) + relu(1 + D(G(z)))."""
    return F.relu(1.0 - real_logits.float()).mean() + F.relu(1.0 + fake_logits.float()).mean()


def hinge_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """Generator hinge loss: -D(G(z))."""
    return -fake_logits.float().mean()


LOSSES: dict[str, tuple[LossFn, Callable[[torch.Tensor], torch.Tensor]]] = {
    "bce": (bce_d_loss, bce_g_loss),
    "hinge": (hinge_d_loss, hinge_g_loss),
}


# The "fake" half of each discriminator loss alone: what a real image shown
# with a wrong class is pushed towards (matching-aware D, see TrainConfig.mismatch).
D_FAKE_TERMS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "bce": lambda logits: F.softplus(logits.float()).mean(),
    "hinge": lambda logits: F.relu(1.0 + logits.float()).mean(),
}


def mode_seeking_loss(images: torch.Tensor, z: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Mode-seeking term (Mao et al. 2019): 1 / (|G(z1) - G(z2)| / |z1 - z2|)
    over the pairs (i, i + B/2) of the batch, which the loop gives the same
    class. Small when different noise makes different images, so adding it
    to G's loss discourages a generator that ignores z (one image per class)."""
    half = images.shape[0] // 2
    dx = (images[:half].float() - images[half : 2 * half].float()).abs().flatten(1).mean(dim=1)
    dz = (z[:half].float() - z[half : 2 * half].float()).abs().mean(dim=1)
    return (1.0 / (dx / dz + eps)).mean()


def get_losses(name: str) -> tuple[LossFn, Callable[[torch.Tensor], torch.Tensor]]:
    """The (discriminator loss, generator loss) pair registered as ``name``."""
    return LOSSES[name]


def d_output_summary(logits: torch.Tensor, loss: str) -> torch.Tensor:
    """What the metrics call D(x) / D(G(z)): the mean probability for BCE,
    the mean raw score for hinge (which has no probabilistic reading)."""
    logits = logits.detach().float()
    return torch.sigmoid(logits).mean() if loss == "bce" else logits.mean()
