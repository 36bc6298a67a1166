"""gantrain: the reference DCGAN (and conditional DCGAN) trained on gandata datasets.

Python API::

    from gantrain import TrainConfig, load_generator, evaluate_run
    from gantrain.train import train

    result = train(TrainConfig(data="data/shapes", run_dir="runs/shapes", steps=3000, conditional=True))
    g = load_generator("runs/shapes")                  # best checkpoint, EMA when present
    images, labels = g.generate_uint8(16, labels=g.class_index("star"))

(``gantrain.train`` is the module holding the loop; its function is
``gantrain.train.train``.) Heavy modules (torch) are imported when first used, so ``import gantrain`` is cheap.
"""

from __future__ import annotations

from typing import Any

from gantrain.errors import (
    ConfigError,
    DataError,
    EvalError,
    GantrainError,
    NonFiniteError,
    RunError,
)

__all__ = [
    "TrainConfig", "ModelConfig", "resolve", "resume_config", "load_generator", "LoadedGenerator",
    "evaluate_run", "EvalConfig", "Evaluator", "GantrainError", "ConfigError", "DataError", "RunError",
    "NonFiniteError", "EvalError",
]

_LAZY = {
    "TrainConfig": "gantrain.config", "ModelConfig": "gantrain.config",
    "resolve": "gantrain.train", "resume_config": "gantrain.train",
    "load_generator": "gantrain.sample", "LoadedGenerator": "gantrain.sample",
    "evaluate_run": "gantrain.evaluate", "EvalConfig": "gantrain.evaluate", "Evaluator": "gantrain.evaluate",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'gantrain' has no attribute {name!r}")
