"""Where the package's own files are: the axis specs, the shipped data and the task folders."""

from pathlib import Path

PACKAGE_DIR = Path(__file__).parent
AXES_DIR = PACKAGE_DIR / "axes"
DATA_DIR = PACKAGE_DIR / "data"
TASKS_DIR = PACKAGE_DIR / "tasks"
# The reference files the WinoBias and Winogender tasks are built from, as published.
WINOBIAS_SOURCE = DATA_DIR / "winobias" / "source"
WINOGENDER_SOURCE = DATA_DIR / "winogender" / "source"
