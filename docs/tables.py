"""The docs' results tables, rendered from the data committed beside them: each report
folder's `report.json` under docs/results/<model>/ and the bench scripts' JSON under
bench/results/. The pages call these through cog markers; `make docs` re-renders them, and
tests/test_docs.py fails when a page's table differs from what its data renders.

    <!-- [[[cog import tables; cog.outl(tables.report("smollm2", "main")) ]]] -->
    ...generated...
    <!-- [[[end]]] -->
"""

from __future__ import annotations

import importlib.util
import json
from functools import cache
from pathlib import Path

from lftf_tasks.axis import load_axis
from lftf_train import report as report_module
from lftf_train.methods.dama.method import sweep_table
from lftf_train.tables import comparison_table

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "docs" / "results"
BENCH = ROOT / "bench" / "results"
# The README's one table: the paper's columns (AFGB, UB, MMLU) and the transfer benchmarks.
HEADLINE_ROWS = [
    "Original",
    "LFTF (paper defaults)",
    "LFTF (dev-tuned)",
    "LFTF (split + KL + anchors)",
    "FPFT",
    "PB",
    "DAMA",
    "ROME",
    "R-ROME",
    "MEMIT",
    "MEND",
]
HEADLINE_COLUMNS = [
    ("afgb_avg", "AFGB ↓"),
    ("ub", "UB ↑"),
    ("mmlu_acc", "MMLU (A–D) ↑"),
    ("mmlu_continuation_acc", "MMLU cloze ↑"),
    ("winobias_pct_pro", "WinoBias % pro →0.5"),
    ("winogender_afgb", "Winogender AFGB ↓"),
    ("neutral_ppl", "neutral PPL ↓"),
]


def _json(path: Path) -> dict:
    return json.loads(path.read_text(encoding="utf-8"))


@cache
def report_info(model: str) -> dict:
    """A report's record (`lftf-train report`'s report.json), committed under docs/results/."""
    return _json(RESULTS / model / "report.json")


def _axis(info: dict):
    return load_axis(info["base_config"]["axis"])


def report(model: str, table: str) -> str:
    """One of the report's own tables (main, capability, ablation, slopes, transfer), as
    `report.md` renders it from the same record."""
    info = report_info(model)
    return report_module.report_tables(info, _axis(info))[table]


def headline(model: str) -> str:
    """The README's table: a few columns of every method's row."""
    rows = report_info(model)["rows"]
    chosen = {rows[n].get("label", n): rows[n] for n in HEADLINE_ROWS if n in rows}
    columns = [(k, label) for k, label in HEADLINE_COLUMNS if any(k in r for r in chosen.values())]
    return comparison_table(chosen, columns, corner="method")


def _bench_module(name: str):
    spec = importlib.util.spec_from_file_location(name, ROOT / "bench" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def dama_sweep(model: str) -> str:
    """`lftf-train dama`'s dev sweep (bench/results/dama_sweep_<model>.json)."""
    info = _json(BENCH / f"dama_sweep_{model}.json")
    return sweep_table(info, load_axis(info["axis"]))


def locator_check(model: str) -> str:
    """bench/locator_check.py's table: which fine-tuned block, test scores."""
    info = _json(BENCH / f"locator_check_{model}.json")
    return _bench_module("locator_check").table(info, load_axis(info["axis"]))


def transfer_check(model: str) -> str:
    """bench/transfer_check.py's table: the loss options on the dev tasks."""
    return _bench_module("transfer_check").table(_json(BENCH / f"transfer_check_{model}.json"))
