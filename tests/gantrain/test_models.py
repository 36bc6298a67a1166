from __future__ import annotations

import pytest
import torch

from gantrain.config import ARCHS, ModelConfig
from gantrain.errors import ConfigError
from gantrain.models import ConditionalBatchNorm2d, build_models, count_parameters


def _config(size=32, channels=3, conditional=False, sn=False, width=4, **kw) -> ModelConfig:
    values = dict(
        image_size=size, channels=channels, num_classes=5 if conditional else 0, conditional=conditional,
        nz=8, ngf=width, ndf=width, spectral_norm=sn, offset=(0.5,) * channels, scale=(0.5,) * channels,
        classes=tuple("abcde") if conditional else (),
    )
    values.update(kw)
    return ModelConfig(**values)


@pytest.mark.parametrize("size", [32, 64, 128])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("conditional", [False, True])
@pytest.mark.parametrize("sn", [False, True])
@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("skip_z", [False, True])
def test_shapes_of_every_size_and_variant(size, channels, conditional, sn, arch, skip_z):
    G, D = build_models(_config(size, channels, conditional, sn, arch=arch, skip_z=skip_z))
    z = torch.randn(3, 8)
    y = torch.tensor([0, 4, 2]) if conditional else None
    x = G(z, y)
    assert x.shape == (3, channels, size, size)
    assert x.abs().max() <= 1.0
    logits = D(x, y)
    assert logits.shape == (3,)
    assert logits.dtype == torch.float32


def test_64px_is_exactly_the_radford_network():
    # Same parameter counts as pytorch/examples' dcgan (nz 100, ngf/ndf 64, RGB).
    G, D = build_models(_config(64, 3, nz=100, ngf=64, ndf=64, arch="dcgan"))
    assert count_parameters(G) == 3_576_704
    assert count_parameters(D) == 2_765_568
    convs = [m for m in G.modules() if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.out_channels for c in convs] == [512, 256, 128, 64, 3]


def test_dcgan_initialisation():
    torch.manual_seed(0)
    G, D = build_models(_config(64, 3, conditional=True, ngf=64, ndf=64, arch="dcgan"))
    weights = torch.cat([m.weight.flatten() for m in D.modules() if isinstance(m, torch.nn.Conv2d)])
    assert abs(weights.std().item() - 0.02) < 0.002
    gains = torch.cat([m.gain.weight.flatten() for m in G.modules() if isinstance(m, ConditionalBatchNorm2d)])
    assert abs(gains.mean().item() - 1.0) < 0.01


@pytest.mark.parametrize("size", [16, 48, 256])
def test_other_sizes_are_refused_with_a_message(size):
    with pytest.raises(ConfigError, match=r"32, 64, 128 px"):
        build_models(_config(size))


def test_conditional_needs_classes():
    with pytest.raises(ConfigError, match="--conditional"):
        build_models(_config(conditional=True, num_classes=0, classes=()))


def test_generator_output_covers_the_manifest_range():
    # zero-1 normalization: normalized values are the pixels themselves.
    G, _ = build_models(_config(32, 3, offset=(0.0,) * 3, scale=(1.0,) * 3))
    with torch.no_grad():
        G.to_image.weight.mul_(1000)  # saturate the Tanh
        x = G(torch.randn(16, 8))
    assert x.min() >= 0.0 and x.max() <= 1.0
    assert x.min() < 0.01 and x.max() > 0.99


@pytest.mark.parametrize("arch", ARCHS)
def test_conditional_generator_depends_on_label(arch):
    G, D = build_models(_config(conditional=True, arch=arch))
    G.eval()
    z = torch.randn(1, 8).repeat(2, 1)
    with torch.no_grad():
        G.norms[0].gain.weight[1].mul_(3)
        x = G(z, torch.tensor([0, 1]))
        assert not torch.allclose(x[0], x[1])
        D.embed.weight[1].add_(1.0)
        logits = D(x[:1].repeat(2, 1, 1, 1), torch.tensor([0, 1]))
    assert logits[0] != logits[1]


def test_pool_discriminator_pools_down_to_4x4_with_3x3_convolutions():
    _, D = build_models(_config(32, 3, conditional=True, width=8))
    convs = [m for m in D.body if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in D.body if isinstance(m, torch.nn.MaxPool2d)]
    assert all(c.kernel_size == (3, 3) and c.stride == (1, 1) for c in convs)
    assert len(pools) == 3  # 32 -> 16 -> 8 -> 4
    assert convs[-1].out_channels == 8 * 8
    assert D.body(torch.zeros(1, 3, 32, 32)).shape == (1, 64, 4, 4)


def test_checkpoints_without_arch_load_as_the_papers_network():
    data = _config().to_json()
    del data["arch"]
    assert ModelConfig.from_json(data).arch == "dcgan"
