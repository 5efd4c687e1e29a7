"""What every output states: the run record (one schema for every method) and the files of
a locate report, each with the provenance footer its figures carry."""

from __future__ import annotations

import re
from pathlib import Path

from lftf_tasks.outputs import provenance, write_json
from lftf_train import plots
from lftf_train.config import BMI_SOURCES

RECORD_FILE = "lftf_run.json"
CONFIG_FILE = "lftf_config.json"


def slug(name: str) -> str:
    """A row label as a folder name: 'LFTF (dev-tuned)' -> 'lftf_dev_tuned'."""
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def footer(info: dict, seed: int) -> str:
    """The provenance line under every figure."""
    return f"{info['produced_by']}  {info.get('model', '')}  seed {seed}  {info['date']}"


def run_record(config, method: str, resolved: str, details: dict, **extra) -> dict:
    """The record of every method's output (``lftf_run.json``), the same top-level keys for
    all: the provenance, the model, the seed, the method and its config, the axis and the
    names (and dev tasks) of its metrics, how lm-eval loads the output, the lm-eval results
    when the run evaluated, and ``result``: what the method itself reports."""
    axis = config.load_axis()
    return provenance(
        model=config.model,
        resolved_model=resolved,
        seed=config.seed,
        method=method,
        config=config.to_dict(),
        axis=axis.name,
        metrics=axis.metrics,
        dev_tasks=[f"{axis.bias_task}_dev", f"{axis.hint_task}_dev"],
        load_with=extra.pop("load_with", None),
        evaluation=extra.pop("evaluation", None),
        result=details,
        **extra,
    )


def write_locate_outputs(folder: Path, report: dict, resolved_model: str) -> None:
    """bmi.json (scores, rankings, provenance), bmi.png and, with the skip locator,
    locators.png."""
    info = {**report, "resolved_model": resolved_model, **provenance()}
    write_json(folder / "bmi.json", info)
    note = footer(info, report["seeds"][0])
    prompts = f"{report['n_prompts']} {report['prompt_split']} prompts"
    plots.plot_bmi(
        {s: report["scores"][s] for s in BMI_SOURCES},
        folder / "bmi.png",
        title=f"BMI per block: {report['model']} ({prompts})",
        footer=note,
    )
    if "skip" in report["scores"]:
        names = {"hidden_states": "BMI (hidden_states)", "block_io": "BMI (block_io)"}
        plots.plot_locators(
            {names.get(k, "skip: |change in bias|"): v for k, v in report["scores"].items()},
            folder / "locators.png",
            title=f"Locators side by side: {report['model']} ({prompts})",
            footer=note,
        )
