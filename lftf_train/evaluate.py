"""Evaluate through lm-eval's own tasks, as a user would, and summarise the bias scores."""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

from lftf_tasks.axis import Axis
from lftf_tasks.slopes import SLOPE_METRICS
from lftf_train.config import Checks

# The paper's MMLU column (letters A-D) and lm-eval's cloze form of it, the signal on small
# models that sit at chance on letters (lftf_tasks.capability serves both offline).
DEFAULT_GENERAL_TASKS = ("mmlu", "mmlu_continuation")


@functools.lru_cache(maxsize=4)
def _task_manager(with_lm_eval_tasks: bool, include_path: tuple[str, ...] = ()):
    """Indexing lm-eval's thousands of task files takes seconds: do it once, and not at all
    when every task asked for is ours or the user's. ``include_path``: a user's task
    folders, searched after ours (a task of theirs with one of our names wins), as
    lftf-eval does."""
    from lftf_tasks import task_manager

    return task_manager(list(include_path), include_defaults=with_lm_eval_tasks)


@dataclass
class Evaluation(Checks):
    """What lm-eval runs besides the axis's own tasks, for `run` and `report`."""

    limit: int | None = None  # lm-eval --limit per task (quick, not comparable)
    general_tasks: list[str] = field(default_factory=list)  # e.g. mmlu,hellaswag
    include_path: list[str] | None = None  # a user's task folders, e.g. for general_tasks
    # the first N docs of each general subtask (not --limit): one N, or {task: N} for
    # some tasks (e.g. the generation tasks on a CPU), the others whole
    general_limit: int | dict[str, int] | None = None

    def __post_init__(self) -> None:
        if self.limit is not None:
            why = "lm-eval's docs per task: give 1 or more (or leave it unset for every doc)"
            self._count("limit", float("inf"), why)
        counts = self.general_limit
        if isinstance(counts, dict):
            unknown = sorted(set(counts) - set(self.general_tasks))
            if unknown:
                self._fail("general_limit", f"{unknown} not among the general tasks")
            if min(counts.values(), default=1) < 1:
                self._fail("general_limit", "docs per subtask: give 1 or more")
        elif counts is not None:
            why = "docs of each general subtask: give 1 or more (or leave it unset for all)"
            self._count("general_limit", float("inf"), why)

    def lm_eval_kwargs(self) -> dict:
        """What run_lm_eval takes from this evaluation, besides the model and tasks."""
        return {
            "limit": self.limit,
            "include_path": self.include_path,
            "general_tasks": self.general_tasks,
            "general_limit": self.general_limit,
        }

    def tasks(self, axis: Axis) -> list[str]:
        return [axis.bias_task, axis.hint_task, *transfer_tasks(axis), *self.general_tasks]


def transfer_tasks(axis: Axis) -> list[str]:
    """Benchmarks written by others that measure the same bias (WinoBias and Winogender for
    gender), run in the same lm-eval call as the axis's own tasks."""
    from lftf_tasks.transfer import TRANSFER_TASKS

    return list(TRANSFER_TASKS) if axis.name == "gender" else []


def transfer_summary(results: dict) -> dict:
    from lftf_tasks.transfer import transfer_summary as summary

    return summary(results)


# (transfer_summary key, column label): WinoBias pair scores, Winogender next-token scores
TRANSFER_COLUMNS = [
    ("winobias_pct_pro", "WinoBias % pro →0.5"),
    ("winobias_pro_gap", "WinoBias pro gap ↓"),
    ("winobias_type1_pct_pro", "type 1 % pro"),
    ("winobias_type2_pct_pro", "type 2 % pro"),
    ("winogender_afgb", "Winogender AFGB ↓"),
    ("winogender_pronoun_mass", "Winogender P(he)+P(she)"),
    ("winogender_relative_gap", "Winogender rel. gap ↓"),
    ("winogender_bls_slope", "Winogender BLS slope →0"),
    ("winogender_bls_r", "Winogender BLS r"),
    ("genbiaseval_bls_slope", "GenBiasEval BLS slope →0"),
]


def general_metrics(results: dict, tasks: list[str]) -> dict[str, float]:
    """One headline metric per general lm-eval task, with its standard error:
    ``<task>_acc`` and ``<task>_acc_stderr`` (``mmlu_acc``) and the like."""
    out = {}
    for task in tasks:
        metrics = results["results"].get(task, {})
        for key in ("acc,none", "acc_norm,none", "exact_match,strict-match", "exact_match,none"):
            if key in metrics:
                name, kind = key.split(",")
                out[f"{task}_{name}"] = metrics[key]
                stderr = metrics.get(f"{name}_stderr,{kind}")
                if not isinstance(stderr, float):
                    stderr = _stderr_of_a_rate(metrics[key], _docs_scored(results, task))
                if stderr is not None:
                    out[f"{task}_{name}_stderr"] = stderr
                break
    return out


def _docs_scored(results: dict, task: str) -> int:
    """How many docs a task, or all tasks of a group, scored (lm-eval's ``n-samples``)."""
    members = results.get("group_subtasks", {}).get(task)
    if members:
        return sum(_docs_scored(results, t) for t in members)
    return results.get("n-samples", {}).get(task, {}).get("effective", 0)


def _stderr_of_a_rate(rate: float, n: int) -> float | None:
    """The standard error of a mean of n scores of 0 or 1 (accuracy, exact match). lm-eval
    gives none for a group whose subtasks scored one doc each (``--general-limit 1``); its
    pooled stderr for larger subsets matches this formula over the docs put together."""
    return math.sqrt(rate * (1 - rate) / (n - 1)) if n > 1 else None


def subtasks(task_manager, name: str) -> list[str]:
    """The tasks a name stands for in lm-eval's index (a group's or tag's members, all
    the way down), read off the index without loading any data."""
    entry = task_manager.task_index.get(name)
    if entry is None:
        return []
    if entry.kind.name in ("TASK", "PY_TASK"):
        return [name]
    members = sorted(entry.tags) if entry.kind.name == "TAG" else entry.cfg.get("task", [])
    return _members(task_manager, members)


def _members(task_manager, items) -> list[str]:
    out = []
    for item in items if isinstance(items, list) else [items]:
        if isinstance(item, dict):  # a group written inline
            out += _members(task_manager, item.get("task", []))
        else:
            out += subtasks(task_manager, item)
    return out


def first_docs(task_manager, tasks: list[str], n: int | dict[str, int]) -> dict[str, list[int]]:
    """lm-eval's ``samples``: the first ``n`` docs of every subtask of ``tasks`` (e.g.
    MMLU's 57 subjects), or ``n[task]`` of the tasks ``n`` names; the other tasks of the
    call whole."""
    counts = n if isinstance(n, dict) else dict.fromkeys(tasks, n)
    return {t: list(range(k)) for name, k in counts.items() for t in subtasks(task_manager, name)}


def parse_general_limit(text: str) -> int | dict[str, int]:
    """``--general-limit``: ``N`` (every general task) or ``task=N,task=N`` (those only)."""
    if "=" not in text:
        return int(text)
    pairs = [item.split("=", 1) for item in text.split(",") if item.strip()]
    return {task.strip(): int(count) for task, count in pairs}


def general_limit_text(limit: int | dict[str, int]) -> str:
    """How much of the general tasks ran, for reports: 'the first 2 test docs of each
    subtask' or 'gsm8k: the first 50 test docs; the others whole'."""
    if not isinstance(limit, dict):
        return f"the first {limit} test doc(s) of each subtask"
    named = "; ".join(f"{task}: the first {n} test doc(s)" for task, n in limit.items())
    return f"{named}; the others whole"


def lm_eval_model_args(resolved_model: str, config) -> str:
    """``--model_args`` for lm-eval's hf model that match how lftf loaded the model."""
    args = f"pretrained={resolved_model}"
    if config.dtype != "auto":
        args += f",dtype={config.dtype}"
    if config.device_map == "auto":
        args += ",parallelize=True"
    return args


def run_lm_eval(
    model_args: str,
    tasks: list[str],
    batch_size: int | str = 16,  # 64 long MMLU prompts hold ~12 GB of fp32 logits
    limit: int | None = None,
    system_instruction: str | None = None,
    log_samples: bool = False,
    include_path: list[str] | None = None,
    general_tasks: list[str] = (),
    general_limit: int | None = None,
) -> dict:
    """``lm_eval --model hf --model_args MODEL_ARGS --tasks ... [--include_path ...]``,
    in-process. ``general_limit``: only the first N docs of each subtask of
    ``general_tasks`` (lm-eval's ``--samples``), unless ``limit`` cuts every task."""
    import lm_eval
    import torch

    from lftf_tasks import TASK_NAMES, include_paths

    include_path = tuple(include_paths(include_path)[1:])  # checked; ours come first anyway
    local = _task_manager(False, include_path)
    with_lm_eval_tasks = not set(tasks) <= set(local.all_tasks) | set(TASK_NAMES)
    manager = _task_manager(with_lm_eval_tasks, include_path)
    samples = None
    if general_limit is not None and limit is None and general_tasks:
        samples = first_docs(manager, list(general_tasks), general_limit)
    try:
        return lm_eval.simple_evaluate(
            model="hf",
            model_args=model_args,
            device="cuda" if torch.cuda.is_available() else "cpu",
            tasks=list(tasks),
            task_manager=manager,
            batch_size=batch_size,
            limit=limit,
            samples=samples,
            system_instruction=system_instruction,
            log_samples=log_samples,
        )
    except Exception as err:
        if not _unreachable_hub(err):
            raise
        raise HubUnreachableError(
            f"lm-eval could not load the docs of {', '.join(general_tasks) or 'a task'} from "
            f"the Hugging Face Hub ({type(err).__name__}: {err}). Offline, set "
            "LFTF_REFERENCE_DIR to a folder holding capability/ (`python -m "
            "lftf_tasks.reference --capability --copy-to DIR` on a machine with network "
            "writes one), or leave them out with --general-tasks none"
        ) from None


class HubUnreachableError(ValueError):
    """A task's dataset lives on the Hub and the Hub cannot be reached."""


def _unreachable_hub(err: BaseException | None) -> bool:
    from datasets.exceptions import DatasetNotFoundError

    while err is not None:
        if isinstance(err, (ConnectionError, DatasetNotFoundError)):
            return True
        err = err.__cause__ or err.__context__
    return False


def bias_summary(results: dict, axis: Axis) -> dict:
    """From lm-eval's results: the bias metric per scale (``<bias>_<scale>``) and over all
    scales (``<bias>_avg``), the hint metric, the mass and the relative bias, with standard
    errors (``<key>_stderr``); names from the axis (afgb_word, ..., ub for gender); with
    the axis's stereotype slopes (a_s, a_f, a_intercept, a_s_relative, a_f_relative)."""
    m = axis.metrics
    r = results["results"]
    out = {}
    scales = [(s, f"{axis.bias_task}_{s}") for s in axis.scales]
    for name, task in scales + [("avg", axis.bias_task)]:
        if task in r:
            out[f"{m['bias']}_{name}"] = r[task][f"{m['bias']},none"]
            out[f"{m['bias']}_{name}_stderr"] = r[task][f"{m['bias']}_stderr,none"]
    if axis.bias_task in r:
        for key in ("mass", "relative"):
            out[m[key]] = r[axis.bias_task][f"{m[key]},none"]
        for metric in SLOPE_METRICS if axis.slopes else ():
            out[metric] = r[axis.bias_task][f"{metric},none"]
    if axis.hint_task in r:
        out[m["hint"]] = r[axis.hint_task][f"{m['hint']},none"]
        out[f"{m['hint']}_stderr"] = r[axis.hint_task][f"{m['hint']}_stderr,none"]
    return out


def summary_columns(axis: Axis) -> list[tuple[str, str]]:
    """(bias_summary key, column label) for a comparison table, in the axis's words."""
    m = axis.metrics
    bias = "AFGB" if m["bias"] == "afgb" else m["bias"]
    hint = "UB" if m["hint"] == "ub" else m["hint"]
    mass = "+".join(f"P({label})" for label in axis.labels)
    relative = "rel. gap" if m["relative"] == "relative_gap" else m["relative"]
    return [
        *[(f"{m['bias']}_{s}", f"{bias} {s} ↓") for s in axis.scales],
        (f"{m['bias']}_avg", f"{bias} avg. ↓"),
        (m["hint"], f"{hint} ↑"),
        (m["mass"], mass if len(mass) < 30 else m["mass"]),
        (m["relative"], f"{relative} ↓"),
    ]


SLOPE_COLUMNS = [
    ("a_s", "a_s (stereotype) →0"),
    ("a_f", "a_f (factual)"),
    ("a_intercept", "intercept"),
    ("a_s_relative", "a_s relative →0"),
    ("a_f_relative", "a_f relative"),
]
