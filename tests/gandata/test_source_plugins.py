"""The source plugin registry (entry-point group ``gandata.sources``) and the
pure parts of the synthetic fill; no torch and no gantrain needed."""

from __future__ import annotations

from importlib import metadata
from typing import Iterator

import numpy as np
import pytest

import gandata.sources as registry
from gandata.config import BalanceConfig, SourceSpec, build_config_from_mapping
from gandata.errors import ConfigError, SourceError
from gandata.plan.synthetic_fill import gan_uri, plan_fill, round_seed
from gandata.sources import SourceContext, open_source, scheme_of, schemes
from gandata.sources.shapes import open_shapes


def open_fake(uri: str, spec: SourceSpec, ctx: SourceContext):
    """fake:... a plugin source for the registry tests"""
    return open_shapes("synth:shapes?count=5", SourceSpec("synth:shapes?count=5"), ctx)


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[metadata.EntryPoint]]:
    """Installed plugins replaced by the list the test fills; the registry
    is restored afterwards."""
    installed: list[metadata.EntryPoint] = []
    saved = dict(registry.SCHEMES)
    monkeypatch.setattr(metadata, "entry_points", lambda group: [e for e in installed if e.group == group])
    monkeypatch.setattr(registry, "_plugins_loaded", False)
    for name in ("gan",):
        registry.SCHEMES.pop(name, None)
    yield installed
    registry.SCHEMES.clear()
    registry.SCHEMES.update(saved)
    registry._plugin_entry_points.clear()


def test_a_plugin_source_is_found_through_its_entry_point(plugins: list[metadata.EntryPoint]) -> None:
    plugins.append(metadata.EntryPoint("fake", f"{__name__}:open_fake", registry.ENTRY_POINT_GROUP))
    plugins.append(metadata.EntryPoint("synth", "nowhere:nothing", registry.ENTRY_POINT_GROUP))
    assert scheme_of("fake:anything") == "fake"
    source = open_source(SourceSpec("fake:anything"), SourceContext(size_px=16))
    assert len([s for p in source.partitions() for s in source.read(p)]) == 5
    assert schemes()["fake"][1] == "fake:... a plugin source for the registry tests"  # the docstring's first line
    assert schemes()["synth"][0] == "gandata.sources.shapes:open_shapes"  # built-ins are never overridden


def test_a_missing_plugin_names_the_package_to_install(plugins: list[metadata.EntryPoint]) -> None:
    with pytest.raises(SourceError, match=r"gan: source kind .* provided by the gantrain package, which is not "
                                          r"installed; install this project with `pip install -e \.`"):
        open_source(SourceSpec("gan:runs/shapes?count=10"), SourceContext())
    # An unknown scheme no plugin is known for is refused, naming the known
    # ones (issue 17: a typo was reported as "no such folder").
    with pytest.raises(SourceError, match=r"unknown source kind 'nothing-known:'; known kinds: cifar:"):
        scheme_of("nothing-known:x")


def test_plan_fill_refuses_a_class_more_synthetic_than_allowed() -> None:
    classes = ["cat", "dog", "eel"]
    labels = np.repeat([0, 1, 2], [100, 60, 20])
    splits = np.array(["train"] * len(labels), dtype=object)
    bc = BalanceConfig(mode="synthesize", synth_from="runs/x", max_synthetic_share=0.5)
    with pytest.raises(ConfigError, match=r"--max-synthetic-share: class 'eel' has 20 real training samples; filling "
                                          r"it to 100 would make 80% of it synthetic, above the limit of 50%\. Raise"):
        plan_fill(labels, splits, classes, bc, classes)
    fill = plan_fill(labels, splits, classes, BalanceConfig(mode="synthesize", synth_from="runs/x",
                                                            sampling_strategy=40), classes)
    assert fill.deficits == {"cat": 0, "dog": 0, "eel": 20} and fill.targets["eel"] == 40
    with pytest.raises(ConfigError, match=r"--synth-from: the generator in runs/x does not know class\(es\) 'eel'"):
        plan_fill(labels, splits, classes, BalanceConfig(mode="synthesize", synth_from="runs/x", sampling_strategy=40),
                  ["cat", "dog"])


def test_gan_uri_and_config() -> None:
    bc = BalanceConfig(mode="synthesize", synth_from="runs/x", synth_filter=0.8, synth_options={"ema": "0"})
    assert gan_uri(bc, {"a b": 3, "c": 0}, seed=7) == "gan:runs/x?ema=0&counts=a%20b:3&seed=7&filter=0.8"
    assert round_seed(0, 0) != round_seed(0, 1) and round_seed(0, 0) == round_seed(0, 0)
    config = build_config_from_mapping({"balance": {"mode": "synthesize", "synth_from": "runs/x", "synth_filter": 1,
                                                    "max_synthetic_share": 0.75, "synth_options": {"ema": 0}}})
    assert config.balance.synth_options == {"ema": "0"} and config.balance.synth_filter == 1.0
    with pytest.raises(ConfigError, match="--synth-option: seed are set by the synthetic fill itself"):
        build_config_from_mapping({"balance": {"mode": "synthesize", "synth_from": "r", "synth_options": {"seed": 1}}})
    with pytest.raises(ConfigError, match=r"--max-synthetic-share: 0.0 must be in \(0, 1\]"):
        build_config_from_mapping({"balance": {"mode": "synthesize", "synth_from": "r", "max_synthetic_share": 0}})
    with pytest.raises(ConfigError, match="--synth-from: only used with --balance synthesize"):
        build_config_from_mapping({"balance": {"mode": "oversample", "synth_from": "r"}})
