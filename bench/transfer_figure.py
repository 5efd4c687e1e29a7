"""docs/figures/transfer.png: Winogender's per-occupation gap against the labour statistics,
original vs LFTF (dev-tuned) vs LFTF (split + KL + anchors), from lm-eval's logged samples of
`winogender_next` (the figure `lftf-train report` draws as transfer.png).

    python bench/transfer_figure.py [--output docs/figures/transfer.png]
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

from lftf_tasks.axis import load_axis
from lftf_tasks.outputs import provenance
from lftf_tasks.transfer import per_occupation_gap
from lftf_train import LFTFConfig, debias, models, plots
from lftf_train.evaluate import lm_eval_model_args, run_lm_eval
from lftf_train.methods.lftf.report import LFTFReportOptions
from lftf_train.registry import get_method

LABELS = ("LFTF (dev-tuned)", "LFTF (split + KL + anchors)")  # the report's rows, its defaults


def row_overrides() -> dict[str, dict]:
    axis = load_axis("gender")
    rows = {row.label: row for row in get_method("lftf").report_rows(axis)}
    return {label: rows[label].config_overrides(LFTFReportOptions(), axis) for label in LABELS}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/figures/transfer.png"))
    args = parser.parse_args()
    base, tokenizer, resolved = models.load("smollm2-135m", "float32")
    common = {"model": "smollm2-135m", "blocks": 29, "seed": 42, "select": "last"}
    model_args = {"Original": lm_eval_model_args(resolved, LFTFConfig(**common))}
    with tempfile.TemporaryDirectory() as tmp:
        for label, fields in row_overrides().items():
            result = debias(copy.deepcopy(base), tokenizer, LFTFConfig(**common, **fields))
            folder = result.save_pretrained(Path(tmp) / label.replace(" ", "_"))
            model_args[label] = result.lm_eval_model_args(folder)
        gaps = {
            label: per_occupation_gap(
                run_lm_eval(margs, ["winogender_next"], log_samples=True)["samples"]
            )
            for label, margs in model_args.items()
        }
    info = provenance()
    plots.plot_transfer(
        gaps,
        args.output,
        title="Winogender: gap against the labour market, smollm2-135m",
        footer=f"{info['produced_by']}, bench/transfer_figure.py, seed 42, {info['date']}",
    )
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
