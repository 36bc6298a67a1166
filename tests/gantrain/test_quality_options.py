"""Options added for the quality benchmark (issue 20): the linear learning-rate
decay and the auxiliary classifier on D's features."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner

from gantrain.checkpoint import load_checkpoint
from gantrain.cli import main
from gantrain.config import ModelConfig, TrainConfig
from gantrain.errors import ConfigError
from gantrain.models import build_models
from gantrain.train import SilentReporter, resolve, resume_config, train

from .conftest import tiny_config
from .test_checkpoint import _assert_same_state
from .test_models import _config as model_config

# --- learning-rate schedule ----------------------------------------------------------------------


def test_linear_decay_factor_at_step_k():
    config = TrainConfig(data="d", run_dir="r", steps=100, lr_decay="linear")
    assert config.lr_factor(0) == 1.0
    assert config.lr_factor(25) == pytest.approx(0.75)
    assert config.lr_factor(99) == pytest.approx(0.01)  # the last update still moves
    assert config.lr_factor(100) == 0.0 and config.lr_factor(150) == 0.0
    assert TrainConfig(data="d", run_dir="r", steps=100).lr_factor(50) == 1.0  # "none": constant


def test_optimisers_use_the_decayed_rates(tiny_dataset, tmp_path):
    result = train(tiny_config(tiny_dataset, tmp_path / "run", steps=4, lr_decay="linear", lr_g=4e-4, lr_d=2e-4))
    ckpt = load_checkpoint(result.last_checkpoint)
    # The last update (step index 3 of 4) ran at a quarter of the base rates.
    assert ckpt["opt_g"]["param_groups"][0]["lr"] == pytest.approx(1e-4)
    assert ckpt["opt_d"]["param_groups"][0]["lr"] == pytest.approx(5e-5)


class _StopAt(SilentReporter):
    """Interrupts the run after ``step`` steps, as Ctrl-C would (a checkpoint is written)."""

    def __init__(self, step: int):
        self.stop = step

    def advance(self, step: int) -> None:
        if step == self.stop:
            raise KeyboardInterrupt


def test_resume_under_linear_decay_is_exact(tiny_dataset, tmp_path):
    options = {"steps": 6, "deterministic": True, "lr_decay": "linear", "conditional": True, "ema": True, "aux_weight": 1.0}
    train(tiny_config(tiny_dataset, tmp_path / "a", **options))
    with pytest.raises(KeyboardInterrupt):
        train(tiny_config(tiny_dataset, tmp_path / "b", **options), reporter=_StopAt(3))
    assert load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")["step"] == 3
    resumed = resume_config(tmp_path / "b")
    assert resumed.lr_decay == "linear" and resumed.aux_weight == 1.0
    train(resumed, resume=True)
    a = load_checkpoint(tmp_path / "a" / "checkpoints" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "checkpoints" / "last.pt")
    for key in ("generator", "discriminator", "ema", "opt_g", "opt_d", "rng"):
        _assert_same_state(a[key], b[key], key)


def test_a_resumed_run_keeps_its_schedule_and_head(tiny_dataset, tmp_path):
    train(tiny_config(tiny_dataset, tmp_path / "run", steps=2, lr_decay="linear", conditional=True, aux_weight=0.5))
    for change in ({"lr_decay": "none"}, {"aux_weight": 0.0}):
        with pytest.raises(ConfigError, match="a resumed run keeps it"):
            resume_config(tmp_path / "run", change)


def test_configs_saved_before_these_options_keep_their_meaning():
    saved = TrainConfig(data="d", run_dir="r").to_json()
    del saved["lr_decay"], saved["aux_weight"]
    old = TrainConfig.from_json(saved)
    assert old.lr_decay == "none" and old.aux_weight == 0.0
    model = ModelConfig(image_size=32, channels=3, offset=(0.5,) * 3, scale=(0.5,) * 3).to_json()
    del model["aux_classifier"]
    assert ModelConfig.from_json(model).aux_classifier is False


def test_bad_values_are_refused():
    with pytest.raises(ConfigError, match="--lr-decay"):
        TrainConfig(data="d", run_dir="r", lr_decay="cosine").validate()
    with pytest.raises(ConfigError, match="--aux-weight"):
        TrainConfig(data="d", run_dir="r", conditional=True, aux_weight=-1.0).validate()
    with pytest.raises(ConfigError, match="--conditional"):
        TrainConfig(data="d", run_dir="r", aux_weight=1.0).validate()


# --- auxiliary classifier --------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["pool", "dcgan", "resnet"])
def test_aux_head_shares_the_body_pass(arch):
    config = ModelConfig(image_size=32, channels=3, num_classes=4, conditional=True, arch=arch, nz=8, ngf=4, ndf=4,
                         aux_classifier=True, offset=(0.5,) * 3, scale=(0.5,) * 3, classes=tuple("abcd"))
    _, D = build_models(config)
    x, y, wrong = torch.randn(5, 3, 32, 32), torch.tensor([0, 1, 2, 3, 0]), torch.tensor([1, 2, 3, 0, 2])
    (right, wrong_logits), aux = D(x, y, wrong, with_aux=True)
    assert aux.shape == (5, 4)
    torch.testing.assert_close(right, D(x, y))
    torch.testing.assert_close(wrong_logits, D(x, wrong))
    _, D_plain = build_models(ModelConfig(**{**config.__dict__, "aux_classifier": False}))
    assert not any("aux" in name for name in D_plain.state_dict())
    with pytest.raises(ValueError, match="no auxiliary classifier"):
        D_plain(x, y, with_aux=True)


def test_the_head_exists_only_when_its_weight_is_positive(tiny_dataset, tmp_path):
    assert resolve(tiny_config(tiny_dataset, tmp_path / "a", conditional=True, aux_weight=0.5)).model.aux_classifier
    assert not resolve(tiny_config(tiny_dataset, tmp_path / "b", conditional=True)).model.aux_classifier


def test_aux_weight_changes_the_d_loss_only_when_positive(tiny_dataset, tmp_path):
    """Same seed, same data: the first logged D loss moves when the head is on, not when it is absent."""

    def first_d_loss(name, **options):
        train(tiny_config(tiny_dataset, tmp_path / name, steps=1, log_every=1, conditional=True, deterministic=True, **options))
        row = (tmp_path / name / "metrics.csv").read_text().splitlines()
        header, values = row[0].split(","), row[1].split(",")
        return float(values[header.index("loss_d")])

    base = first_d_loss("base")
    assert first_d_loss("again") == base
    # The head adds a cross-entropy of about log(3) (3 classes, untrained head).
    assert first_d_loss("aux", aux_weight=1.0) > base + 0.5


def test_cli_flags_reach_the_config(tiny_dataset, tmp_path):
    import json

    args = ["train", str(tiny_dataset), "-o", str(tmp_path / "run"), "--conditional", "--lr-decay", "linear",
            "--aux-weight", "0.5", "--dry-run", "--device", "cpu"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code == 0, result.output
    resolved = json.loads(result.output)
    assert resolved["train"]["lr_decay"] == "linear" and resolved["train"]["aux_weight"] == 0.5
    assert resolved["model"]["aux_classifier"] is True
    bad = CliRunner().invoke(main, ["train", str(tiny_dataset), "-o", str(tmp_path / "x"), "--lr-decay", "cosine"])
    assert bad.exit_code == 2


# --- DiffAugment translation by default --------------------------------------------------------------


def test_translation_is_the_default_and_none_turns_it_off(tiny_dataset, tmp_path):
    import json

    assert TrainConfig(data="d", run_dir="r").diffaugment == ("translation",)
    base = ["train", str(tiny_dataset), "--dry-run", "--device", "cpu"]
    default = json.loads(CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a")]).output)
    assert default["train"]["diffaugment"] == ["translation"]
    off = json.loads(CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--diffaugment", "none"]).output)
    assert off["train"]["diffaugment"] == []
    saved = TrainConfig(data="d", run_dir="r", diffaugment=()).to_json()
    assert TrainConfig.from_json(saved).diffaugment == ()  # a run saved without augmentation keeps none


# --- Hinge loss and spectral norm by default ---------------------------------------------------------


def test_hinge_and_spectral_norm_are_the_default_and_can_be_turned_off(tiny_dataset, tmp_path):
    import json

    config = TrainConfig(data="d", run_dir="r")
    assert config.loss == "hinge" and config.spectral_norm is True
    base = ["train", str(tiny_dataset), "--dry-run", "--device", "cpu"]
    default = json.loads(CliRunner().invoke(main, [*base, "-o", str(tmp_path / "a")]).output)
    assert default["train"]["loss"] == "hinge" and default["train"]["spectral_norm"] is True
    assert default["model"]["spectral_norm"] is True
    off = json.loads(CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--loss", "bce", "--no-spectral-norm"]).output)
    assert off["train"]["loss"] == "bce" and off["train"]["spectral_norm"] is False
    assert off["model"]["spectral_norm"] is False
    saved = TrainConfig(data="d", run_dir="r", loss="bce", spectral_norm=False).to_json()
    old = TrainConfig.from_json(saved)  # a run saved with BCE and no spectral norm keeps them
    assert old.loss == "bce" and old.spectral_norm is False


# --- skip-z: z and the class in every BatchNorm of G ---------------------------------------------------


@pytest.mark.parametrize("conditional", [True, False])
def test_skip_z_lets_z_set_every_batchnorm(conditional):
    from gantrain.models import LatentBatchNorm2d

    torch.manual_seed(0)
    G, _ = build_models(model_config(conditional=conditional, skip_z=True))
    assert all(isinstance(norm, LatentBatchNorm2d) for norm in G.norms)
    G.eval()
    y = torch.tensor([1, 1]) if conditional else None
    z = torch.randn(2, 8)
    with torch.no_grad():
        G.blocks[0].weight.zero_()  # the first layer no longer passes z on: only the norms can
        for norm in G.norms:
            norm.gain.weight.normal_(0.0, 0.5)
            norm.bias.weight.normal_(0.0, 0.5)
        x = G(z, y)
    assert not torch.allclose(x[0], x[1])


def test_skip_z_is_the_default_trains_samples_and_is_off_in_old_runs(tiny_dataset, tmp_path):
    import json

    from gantrain.sample import load_generator

    assert TrainConfig(data="d", run_dir="r").skip_z is True
    train(tiny_config(tiny_dataset, tmp_path / "run", conditional=True, ema=True, steps=6), reporter=SilentReporter())
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["model"]["skip_z"] is True
    images, _ = load_generator(tmp_path / "run", checkpoint="last").generate_uint8(4, labels=1, seed=0)
    assert images.shape == (4, 3, 32, 32)
    base = ["train", str(tiny_dataset), "--dry-run", "--device", "cpu"]
    off = json.loads(CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--no-skip-z"]).output)
    assert off["train"]["skip_z"] is False and off["model"]["skip_z"] is False
    saved, model = TrainConfig(data="d", run_dir="r", skip_z=True).to_json(), model_config(conditional=True, skip_z=True).to_json()
    del saved["skip_z"], model["skip_z"]
    assert TrainConfig.from_json(saved).skip_z is False and ModelConfig.from_json(model).skip_z is False
