"""Output folders that appear whole or not at all, and the provenance every file carries.

Standard library only: both packages write through it (lftf_tasks for task folders and
Hub exports, lftf_train for adapters, reports and converted models).
"""

from __future__ import annotations

import contextvars
import json
import os
import platform
import shutil
import sys
import tempfile
from contextlib import contextmanager
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path

PACKAGES = ("lftf", "torch", "transformers", "peft", "accelerate", "lm_eval", "datasets")

# The command line that records name; entry points that are called in-process with their
# own argv (lftf-train's main) set it, otherwise it is the process's sys.argv.
command_line: contextvars.ContextVar[list[str] | None] = contextvars.ContextVar(
    "command_line", default=None
)


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def provenance(**extra) -> dict:
    """What produced an output: command line, date, package versions, plus ``extra``."""
    argv = command_line.get() or [Path(sys.argv[0]).name, *sys.argv[1:]]
    return {
        "produced_by": f"lftf {versions()['lftf']}",
        "command": " ".join(map(str, argv)),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": versions(),
        **extra,
    }


def write_json(path: Path, obj) -> None:
    Path(path).write_text(json.dumps(obj, indent=2, default=str) + "\n")


def check_output_dir(out_dir: Path, overwrite: bool) -> None:
    """Fail before any work if the output exists and may not be replaced."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"output directory {out_dir} exists; pass --overwrite to replace it")
    if out_dir.exists() and not out_dir.is_dir():
        raise FileExistsError(f"{out_dir} exists and is not a directory")


@contextmanager
def atomic_output_dir(out_dir: Path, overwrite: bool = False):
    """Yield a hidden temporary folder beside ``out_dir``; it becomes ``out_dir`` only if the
    block finishes. On an error or Ctrl-C nothing is left behind and an old output stays.

    Without ``overwrite``, a folder that another process created meanwhile is kept and
    FileExistsError is raised at the end.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary folder
    try:
        yield tmp
        if out_dir.exists():
            check_output_dir(out_dir, overwrite)
            old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old-", dir=out_dir.parent))
            out_dir.rename(old / "x")
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
