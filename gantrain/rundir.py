"""The run directory: resolved config, metrics, events and sample grids.

    RUN/
      config.json         the resolved configuration (train, model, dataset, runtime)
      metrics.csv         one row per logged window: losses, D(x), D(G(z)), images/s
      eval.csv            one row per evaluation during training
      events.jsonl        resume, alarms, best checkpoint, stop reasons
      samples/            fixed-noise grids, raw and EMA, in eval mode
      checkpoints/        last.pt, best.pt
      tensorboard/        when the tensorboard package is installed

Only rank 0 writes here.
"""

from __future__ import annotations

import csv
import json
import os
import time
from pathlib import Path
from typing import Any, Mapping

METRIC_COLUMNS = ("step", "loss_d", "loss_g", "d_real", "d_fake", "images_per_s", "elapsed_s")
EVAL_COLUMNS = (
    "step", "fd", "fd_floor", "kid", "precision", "recall", "class_accuracy", "class_entropy", "diversity", "model",
)


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, path)


class _CsvLog:
    """An append-only CSV file with a fixed header."""

    def __init__(self, path: Path, columns: tuple[str, ...]):
        self.path = path
        self.columns = columns
        if not path.exists():
            with open(path, "w", newline="") as f:
                csv.writer(f).writerow(columns)

    def append(self, row: Mapping[str, Any]) -> None:
        with open(self.path, "a", newline="") as f:
            csv.writer(f).writerow([_fmt(row.get(c)) for c in self.columns])

    def truncate_after(self, step: int) -> None:
        """Drop rows logged after ``step``: a resumed run logs them again."""
        with open(self.path, newline="") as f:
            rows = list(csv.reader(f))
        kept = [rows[0]] + [r for r in rows[1:] if r and int(r[0]) <= step]
        with open(self.path, "w", newline="") as f:
            csv.writer(f).writerows(kept)


def _fmt(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    return value


class RunDir:
    """Paths and writers of one run directory."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    @property
    def config_path(self) -> Path:
        return self.root / "config.json"

    @property
    def samples_dir(self) -> Path:
        return self.root / "samples"

    @property
    def checkpoints_dir(self) -> Path:
        return self.root / "checkpoints"

    def has_checkpoint(self) -> bool:
        return (self.checkpoints_dir / "last.pt").is_file()

    def open(self, resumed_from_step: int | None) -> "RunLogs":
        """Create the directories and the log writers (trimming rows past a
        resumed checkpoint's step)."""
        self.root.mkdir(parents=True, exist_ok=True)
        self.samples_dir.mkdir(exist_ok=True)
        self.checkpoints_dir.mkdir(exist_ok=True)
        return RunLogs(self, resumed_from_step)

    def write_config(self, resolved: Mapping[str, Any]) -> None:
        write_json_atomic(self.config_path, dict(resolved))


class RunLogs:
    """metrics.csv, eval.csv, events.jsonl and (optionally) TensorBoard."""

    def __init__(self, run: RunDir, resumed_from_step: int | None):
        self.metrics = _CsvLog(run.root / "metrics.csv", METRIC_COLUMNS)
        self.evals = _CsvLog(run.root / "eval.csv", EVAL_COLUMNS)
        self.events_path = run.root / "events.jsonl"
        if resumed_from_step is not None:
            self.metrics.truncate_after(resumed_from_step)
            self.evals.truncate_after(resumed_from_step)
        self.tensorboard = _open_tensorboard(run.root / "tensorboard")

    def log_metrics(self, row: Mapping[str, Any]) -> None:
        self.metrics.append(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"train/{key}", value, row["step"])

    def log_eval(self, row: Mapping[str, Any]) -> None:
        self.evals.append(row)
        if self.tensorboard is not None:
            for key, value in row.items():
                if key != "step" and isinstance(value, (int, float)):
                    self.tensorboard.add_scalar(f"eval/{key}", value, row["step"])

    def event(self, name: str, step: int, **fields: Any) -> None:
        record = {"time": time.strftime("%Y-%m-%dT%H:%M:%S"), "step": step, "event": name, **fields}
        with open(self.events_path, "a") as f:
            f.write(json.dumps(record, sort_keys=True) + "\n")

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def _open_tensorboard(path: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional
        return None
    return SummaryWriter(str(path))
