"""Shared fixtures: tiny datasets built with the real pipeline."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def shapes_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small synthetic shapes dataset at 32 px (built once per session)."""
    from gandata.config import BuildConfig, ImageConfig, OutputConfig, SourceSpec
    from gandata.pipeline import build

    out = tmp_path_factory.mktemp("shapes") / "ds"
    build(
        BuildConfig(
            sources=(SourceSpec("synth:shapes?count=300"),),
            output=str(out),
            image=ImageConfig(size_px=32),
            out=OutputConfig(shard_size=128),
            workers=1,
        )
    )
    return out


@pytest.fixture(scope="session", autouse=True)
def _private_download_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Remote archives download into the user's cache folder; tests keep
    theirs in a temporary one."""
    import os

    if "GANDATA_CACHE_DIR" not in os.environ:
        os.environ["GANDATA_CACHE_DIR"] = str(tmp_path_factory.mktemp("gandata-cache"))
