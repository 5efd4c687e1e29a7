"""Output folders that appear whole or not at all, and the provenance every file carries.

Standard library only: both packages write through it (lftf_tasks for task folders and
Hub exports, lftf_train for adapters, reports and converted models).
"""

from __future__ import annotations

import contextvars
import json
import os
import platform
import re
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


# A temporary beside its target: ".NAME.tmp-PID-RANDOM" (or ".old-"), PID the writer's.
TEMPORARY = re.compile(r"^\.(?P<name>.+)\.(?:tmp|old)-(?P<pid>\d+)-[^/]+$")


def temporary_prefix(name: str, kind: str = "tmp") -> str:
    """The hidden name's start for a temporary of ``name`` that this process writes."""
    return f".{name}.{kind}-{os.getpid()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # e.g. another user's process: it exists
        return True
    return True


def remove_stale_temporaries(parent: Path) -> list[Path]:
    """Remove the temporaries under ``parent`` whose writer is gone (a run killed with -9
    while writing leaves its ``.NAME.tmp-PID-*``); the list of what was removed.

    Only a temporary whose pid no longer runs on this machine is provably stale: one whose
    process lives may still be written, so it stays."""
    removed = []
    try:
        entries = list(Path(parent).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY.match(entry.name)
        if match is None or int(match["pid"]) == os.getpid() or _alive(int(match["pid"])):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed


@contextmanager
def atomic_output_dir(out_dir: Path, overwrite: bool = False):
    """Yield a hidden temporary folder beside ``out_dir``; it becomes ``out_dir`` only if the
    block finishes. On an error or Ctrl-C nothing is left behind and an old output stays;
    what a killed run (-9) left is removed by the next run into the same parent.

    Without ``overwrite``, a folder that another process created meanwhile is kept and
    FileExistsError is raised at the end.
    """
    out_dir = Path(out_dir)
    check_output_dir(out_dir, overwrite)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(out_dir.parent)
    tmp = Path(tempfile.mkdtemp(prefix=temporary_prefix(out_dir.name), dir=out_dir.parent))
    umask = os.umask(0)
    os.umask(umask)
    tmp.chmod(0o777 & ~umask)  # mkdtemp makes it private; the output is an ordinary folder
    try:
        yield tmp
        if out_dir.exists():
            check_output_dir(out_dir, overwrite)
            old = Path(
                tempfile.mkdtemp(prefix=temporary_prefix(out_dir.name, "old"), dir=out_dir.parent)
            )
            out_dir.rename(old / "x")
            tmp.rename(out_dir)
            shutil.rmtree(old, ignore_errors=True)
        else:
            tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def render_template(path: Path, **context) -> str:
    """A Jinja template file rendered strictly: a name it uses and is not given is an error,
    not an empty string in a written file."""
    return render_template_text(Path(path).read_text(encoding="utf-8"), **context)


def render_template_text(text: str, **context) -> str:
    """A Jinja template's text rendered strictly (see ``render_template``)."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(text).render(**context)
