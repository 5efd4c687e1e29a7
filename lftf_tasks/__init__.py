"""GenBiasEval and GenHintEval (and every other bias axis) as lm-evaluation-harness tasks,
with WinoBias and Winogender (next pronoun) to check that a debiasing method transfers.

lm_eval --tasks genbiaseval,genhinteval --include_path "$(lftf-tasks-path)" ...
lftf-eval --tasks genbiaseval,genhinteval,mmlu ...          # same, path added for you

from lftf_tasks import task_manager
lm_eval.simple_evaluate(model=..., tasks=["genbiaseval"], task_manager=task_manager())
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from lftf_tasks.paths import TASKS_DIR

__version__ = "0.1.0"
__all__ = ["TASKS_DIR", "TASK_NAMES", "data_dir", "include_path", "include_paths", "task_manager"]


class _QuietLmEvalNotes(logging.Filter):
    """Two of lm-eval's notes that say nothing here, once per task: that a task with a
    custom_dataset takes --metadata (ours all read files), and that a local general task
    overrides lm-eval's Hub task of the same name (which is the point of it)."""

    def filter(self, record: logging.LogRecord) -> bool:
        text = record.getMessage()
        if "Custom kwargs can be passed" in text:
            return False
        return not ("overrides existing task" in text and "/capability/" in text)


for _logger in ("lm_eval.api.task", "lm_eval.tasks._index"):
    logging.getLogger(_logger).addFilter(_QuietLmEvalNotes())


def data_dir() -> Path:
    """The folder of built data the tasks read (prompts, WinoBias pairs, Winogender prompts,
    data cards), built in the lftf cache on first use from the verified published files."""
    from lftf_tasks.build import data_dir as built

    return built()


def _task_names() -> tuple[str, ...]:
    from lftf_tasks.axis import BUILTIN_AXES, load_axis
    from lftf_tasks.generate import task_names
    from lftf_tasks.transfer import TRANSFER_TASK_NAMES

    axes = tuple(name for axis in BUILTIN_AXES for name in task_names(load_axis(axis)))
    return axes + TRANSFER_TASK_NAMES


# genbiaseval, genbiaseval_word, ..., relhinteval_dev, winobias, ..., winogender_next
TASK_NAMES = _task_names()


def include_path() -> str:
    """The folder to pass to lm-eval's ``--include_path``."""
    return str(TASKS_DIR)


def include_paths(user_paths: str | list[str] | None = None) -> list[str]:
    """Our task folder (and the local general tasks, if any) followed by the user's own (a
    path, an os.pathsep list, or a list).

    lm-eval lets later folders override earlier ones, so a user's task of the same name wins.
    """
    if user_paths is None:
        user_paths = []
    elif isinstance(user_paths, str):
        user_paths = [p for p in user_paths.split(os.pathsep) if p]
    for path in user_paths:
        if not Path(path).is_dir():
            raise FileNotFoundError(f"--include_path {path!r} is not a directory")
    return [include_path(), *capability_paths(), *user_paths]


def capability_paths() -> list[str]:
    """lm-eval's MMLU, GSM8K, ... over local files, when ``LFTF_REFERENCE_DIR`` holds
    them (``lftf_tasks.capability``); else none, and lm-eval's Hub tasks run untouched."""
    from lftf_tasks import capability

    return [str(capability.task_folder())] if capability.available() else []


def task_manager(include_path: str | list[str] | None = None, **kwargs):
    """An ``lm_eval.tasks.TaskManager`` that knows our tasks besides lm-eval's own."""
    from lm_eval.tasks import TaskManager

    return TaskManager(include_path=include_paths(include_path), **kwargs)
