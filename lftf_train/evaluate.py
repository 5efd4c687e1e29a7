"""Evaluate through lm-eval's own tasks, as a user would, and summarise the bias scores."""

from __future__ import annotations

import functools
import logging

from lftf_tasks.axis import load_axis


class _QuietCustomDatasetNote(logging.Filter):
    """lm-eval warns, once per task, that tasks with a custom_dataset take --metadata."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Custom kwargs can be passed" not in record.getMessage()


logging.getLogger("lm_eval.api.task").addFilter(_QuietCustomDatasetNote())
BIAS_TASKS = ("genbiaseval", "genhinteval")


@functools.lru_cache(maxsize=2)
def _task_manager(with_lm_eval_tasks: bool):
    """Indexing lm-eval's thousands of task files takes seconds: do it once, and not at all
    when only our tasks are asked for."""
    from lftf_tasks import task_manager

    return task_manager(include_defaults=with_lm_eval_tasks)


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
    tasks: tuple[str, ...] | list[str] = BIAS_TASKS,
    batch_size: int | str = 64,
    limit: int | None = None,
    system_instruction: str | None = None,
    log_samples: bool = False,
) -> dict:
    """``lm_eval --model hf --model_args MODEL_ARGS --tasks ...`` in-process."""
    import lm_eval
    import torch

    from lftf_tasks import TASK_NAMES

    return lm_eval.simple_evaluate(
        model="hf",
        model_args=model_args,
        device="cuda" if torch.cuda.is_available() else "cpu",
        tasks=list(tasks),
        task_manager=_task_manager(not set(tasks) <= set(TASK_NAMES)),
        batch_size=batch_size,
        limit=limit,
        system_instruction=system_instruction,
        log_samples=log_samples,
    )


def bias_summary(results: dict, axis=None) -> dict:
    """The bias score per scale and averaged, the hint score, with standard errors, from
    lm-eval's results. Keys keep the gender names (afgb_word, ..., ub) for every axis."""
    axis = axis or load_axis("gender")
    bias, hint = axis.metrics["bias"], axis.metrics["hint"]
    r = results["results"]
    out = {}
    scales = [(s, f"{axis.bias_task}_{s}") for s in axis.scales]
    for name, key in scales + [("avg", axis.bias_task)]:
        if key in r:
            out[f"afgb_{name}"] = r[key][f"{bias},none"]
            out[f"afgb_{name}_stderr"] = r[key][f"{bias}_stderr,none"]
    if axis.bias_task in r:
        out["pronoun_mass"] = r[axis.bias_task][f"{axis.metrics['mass']},none"]
        out["relative_gap"] = r[axis.bias_task][f"{axis.metrics['relative']},none"]
    if axis.hint_task in r:
        out["ub"] = r[axis.hint_task][f"{hint},none"]
        out["ub_stderr"] = r[axis.hint_task][f"{hint}_stderr,none"]
    return out


def columns(axis=None) -> list[tuple[str, str]]:
    """(summary key, column label) of the comparison table, in the axis's metric names."""
    axis = axis or load_axis("gender")
    m = axis.metrics
    bias = "AFGB" if m["bias"] == "afgb" else m["bias"]
    hint = "UB" if m["hint"] == "ub" else m["hint"]
    mass = "+".join(f"P({label})" for label in axis.labels)
    return [
        *[(f"afgb_{s}", f"{bias} {s} ↓") for s in axis.scales],
        ("afgb_avg", f"{bias} avg. ↓"),
        ("ub", f"{hint} ↑"),
        ("pronoun_mass", mass if len(mass) < 30 else m["mass"]),
        ("relative_gap", "rel. gap ↓" if m["relative"] == "relative_gap" else f"{m['relative']} ↓"),
    ]


def comparison_table(rows: dict[str, dict], baseline: str | None = None, axis=None) -> str:
    """Markdown table, one row per model; deltas against ``baseline`` in parentheses."""
    cols = columns(axis)
    head = "| | " + " | ".join(label for _, label in cols) + " |"
    lines = [head, "|---" * (len(cols) + 1) + "|"]
    base = rows.get(baseline) if baseline else None
    for name, summary in rows.items():
        cells = []
        for key, _ in cols:
            if key not in summary:
                cells.append("–")
                continue
            cell = f"{summary[key]:.4f}"
            if f"{key}_stderr" in summary:
                cell += f" ± {summary[f'{key}_stderr']:.4f}"
            if base is not None and name != baseline and key in base:
                cell += f" ({summary[key] - base[key]:+.4f})"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)
