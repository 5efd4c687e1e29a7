"""Where the package's own files are (the axis specs, the task folders) and the lftf cache,
which holds what the package fetches or builds on first use: the published reference files
(``reference/``), the data built from them (``data/``) and converted models."""

import os
from pathlib import Path

PACKAGE_DIR = Path(__file__).parent
AXES_DIR = PACKAGE_DIR / "axes"
TASKS_DIR = PACKAGE_DIR / "tasks"


def cache_root() -> Path:
    """``$LFTF_CACHE``, default ``~/.cache/lftf``."""
    return Path(os.environ.get("LFTF_CACHE") or Path.home() / ".cache" / "lftf").expanduser()
