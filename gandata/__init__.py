"""gandata: prepare clean, balanced, sharded image datasets for GAN training.

The public API: ``open_dataset`` reads a built dataset; ``gandata.pipeline.build``
builds one from a ``gandata.config.BuildConfig``. gandata never imports torch at
import time; ``gandata.torch`` holds the PyTorch adapter.
"""

__version__ = "0.1.0"

from gandata.dataset.reader import Dataset, open_dataset  # noqa: E402
from gandata.errors import (  # noqa: E402
    BuildError,
    ConfigError,
    FormatError,
    GandataError,
    SourceError,
    VerifyError,
)

__all__ = [
    "__version__", "open_dataset", "Dataset",
    "GandataError", "ConfigError", "SourceError", "FormatError", "VerifyError", "BuildError",
]
