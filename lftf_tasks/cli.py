"""Command-line entry points: ``lftf-eval`` (lm_eval plus our tasks) and ``lftf-tasks-path``."""

from __future__ import annotations

import sys

from lftf_tasks import TASK_NAMES, include_path, include_paths

EVAL_EPILOG = """\
lftf-eval is lm_eval with the lftf tasks (genbiaseval, genbiaseval_{word,phrase,sentence},
the *_dev variants and genhinteval; relbiaseval and relhinteval for the religion axis;
winobias, winobias_dev and winogender_next to check that debiasing transfers) always
available. Their data is built on first use from published files, downloaded at pinned
commits and checked by sha256 (offline: LFTF_REFERENCE_DIR names a folder of copies).
Every lm_eval argument works as usual; an --include_path of your own (one folder, or
several joined by ':') is searched after ours, e.g. a folder that lftf-build-axis wrote
for an axis of your own. Example:

  lftf-eval --model hf --model_args pretrained=Qwen/Qwen2.5-7B \\
      --tasks genbiaseval,genhinteval,mmlu --batch_size 32 --log_samples --output_path out/
"""


def _pop_include_path(argv: list[str]) -> tuple[list[str], str | None]:
    rest, user = [], None
    args = iter(argv)
    for arg in args:
        if arg == "--include_path":
            user = next(args, None)
            if user is None:
                raise SystemExit("lftf-eval: --include_path needs a folder")
        elif arg.startswith("--include_path="):
            user = arg.split("=", 1)[1]
        else:
            rest.append(arg)
    return rest, user


def _requested_tasks(argv: list[str]) -> list[str]:
    """The names given to --tasks (comma-separated), if any."""
    names = []
    for i, arg in enumerate(argv):
        if arg == "--tasks" and i + 1 < len(argv):
            names += argv[i + 1].split(",")
        elif arg.startswith("--tasks="):
            names += arg.split("=", 1)[1].split(",")
    return [n.strip() for n in names if n.strip()]


def _fetch_data(tasks: list[str]) -> None:
    """The data of the requested tasks, before lm_eval loads a model: a missing or damaged
    file is one clear error now, not a traceback from inside lm_eval later."""
    from lftf_tasks import capability
    from lftf_tasks.reference import ReferenceDataError, fetch

    try:
        if set(tasks) & set(TASK_NAMES):
            from lftf_tasks.build import data_dir

            data_dir()
        if capability.available():
            fetch(capability.sources_for(tasks))
    except ReferenceDataError as err:
        raise SystemExit(f"lftf-eval: error: {err}") from None


def lftf_eval(argv: list[str] | None = None) -> None:
    """Run lm_eval's own CLI with our task folder merged into ``--include_path``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv in (["-h"], ["--help"]):
        print("usage: lftf-eval [lm_eval arguments ...]\n\n" + EVAL_EPILOG)
        print("lm_eval's own options follow.\n")
        argv = ["run", "--help"]
    argv, user_paths = _pop_include_path(argv)
    try:
        paths = include_paths(user_paths)
    except FileNotFoundError as err:
        raise SystemExit(f"lftf-eval: {err}") from None
    _fetch_data(_requested_tasks(argv))

    import lm_eval.tasks
    from lm_eval.__main__ import cli_evaluate

    base = lm_eval.tasks.TaskManager

    class TaskManagerWithLFTF(base):
        """lm_eval's CLI takes one include path; ours is added to whatever it passes."""

        def __init__(self, *args, include_path=None, **kwargs):
            extra = [] if include_path is None else [include_path]
            super().__init__(*args, include_path=[*paths, *extra], **kwargs)

    lm_eval.tasks.TaskManager = TaskManagerWithLFTF
    saved_argv, sys.argv = sys.argv, ["lftf-eval", *argv]
    try:
        cli_evaluate()
    except ValueError as err:
        if not str(err).startswith("Tasks not found"):
            raise
        raise SystemExit(
            f"lftf-eval: {err}. See the names with: lftf-eval ls tasks "
            f"(ours: {', '.join(TASK_NAMES)})"
        ) from None
    finally:
        lm_eval.tasks.TaskManager = base
        sys.argv = saved_argv


def print_tasks_path() -> None:
    """Print the folder to give lm_eval's --include_path."""
    if len(sys.argv) > 1 and sys.argv[1] in ("-h", "--help"):
        print(
            "usage: lftf-tasks-path\n\nPrints the lftf task folder, for lm_eval's --include_path:"
        )
        print('  lm_eval --tasks genbiaseval,genhinteval --include_path "$(lftf-tasks-path)" ...')
        return
    print(include_path())
