"""Evaluate through lm-eval's own tasks, as a user would, and summarise the bias scores."""

from __future__ import annotations

import functools
import logging

SCALES = ("word", "phrase", "sentence")


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


def bias_summary(results: dict) -> dict:
    """AFGB per scale and averaged, UB, with standard errors, from lm-eval's results."""
    r = results["results"]
    out = {}
    for name, key in [(s, f"genbiaseval_{s}") for s in SCALES] + [("avg", "genbiaseval")]:
        if key in r:
            out[f"afgb_{name}"] = r[key]["afgb,none"]
            out[f"afgb_{name}_stderr"] = r[key]["afgb_stderr,none"]
    if "genbiaseval" in r:
        out["pronoun_mass"] = r["genbiaseval"]["pronoun_mass,none"]
        out["relative_gap"] = r["genbiaseval"]["relative_gap,none"]
    if "genhinteval" in r:
        out["ub"] = r["genhinteval"]["ub,none"]
        out["ub_stderr"] = r["genhinteval"]["ub_stderr,none"]
    return out


COLUMNS = [
    ("afgb_word", "AFGB word ↓"),
    ("afgb_phrase", "AFGB phrase ↓"),
    ("afgb_sentence", "AFGB sentence ↓"),
    ("afgb_avg", "AFGB avg. ↓"),
    ("ub", "UB ↑"),
    ("pronoun_mass", "P(he)+P(she)"),
    ("relative_gap", "rel. gap ↓"),
]


def comparison_table(rows: dict[str, dict], baseline: str | None = None) -> str:
    """Markdown table, one row per model; deltas against ``baseline`` in parentheses."""
    head = "| | " + " | ".join(label for _, label in COLUMNS) + " |"
    lines = [head, "|---" * (len(COLUMNS) + 1) + "|"]
    base = rows.get(baseline) if baseline else None
    for name, summary in rows.items():
        cells = []
        for key, _ in COLUMNS:
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
