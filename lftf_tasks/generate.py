"""An axis spec -> an lm-eval task folder (yaml files and the utils.py they point at).

    lftf-build-axis my_axis.yaml --output-dir my_tasks/
    lm_eval --include_path my_tasks --tasks my_axis_biaseval,my_axis_hinteval ...

For a spec of your own the folder also gets a copy of the spec and the prompt files
(``data/``), so it works on its own. The built-in axes' folders under
``lftf_tasks/tasks/`` are written by ``python -m lftf_tasks.build`` and read the data the
package builds in the lftf cache instead (``lftf_tasks.build.data_dir``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lftf_tasks.axis import AxisSpecError, data_files, load_axis
from lftf_tasks.labour import LABOUR_METRICS
from lftf_tasks.outputs import atomic_output_dir, check_output_dir
from lftf_tasks.reference import ReferenceDataError
from lftf_tasks.slopes import SLOPE_METRICS

HEADER = "# Generated from {source} by lftf_tasks.generate; do not edit, edit the spec.\n"


SLOPE_AGGREGATIONS = {
    metric: aggregation.__name__ for metric, (_, aggregation) in SLOPE_METRICS.items()
}
# Every aggregation that is not a mean, by metric: the function utils.py must define.
AGGREGATIONS = {**SLOPE_AGGREGATIONS, **{m: m for m in LABOUR_METRICS}, "pro_gap": "pro_gap"}


def metric_block(names_and_direction: list[tuple[str, bool]]) -> str:
    """Means, except the fits (a least-squares fit over all of the task's prompts) and
    WinoBias's pro_gap: lm-eval calls utils' function on the per-doc items."""
    return "".join(
        f"  - metric: {name}\n"
        + (
            f"    aggregation: !function utils.{AGGREGATIONS[name]}\n"
            if name in AGGREGATIONS
            else "    aggregation: mean\n"
        )
        + f"    higher_is_better: {str(up).lower()}\n"
        for name, up in names_and_direction
    )


def metric_rows(axis, hint: bool = False) -> list[tuple[str, bool]]:
    """(metric, higher is better) of an axis's bias task, or of its hint task."""
    m = axis.metrics
    rows = [(m["hint"], True)] if hint else []
    rows.append((m["bias"], False))
    if len(axis.groups) == 2:
        rows.append(("gap", False))
    rows += [(m["mass"], True), (m["relative"], False)]
    rows += [(f"p_{g.label}", True) for g in axis.groups]
    rows += [(f"log_p_{g.label}", True) for g in axis.groups]
    if axis.slopes and not hint:  # a_s near 0 is fair; lm-eval needs a direction
        rows += [(name, False) for name in SLOPE_METRICS]
    if axis.labour and not hint:  # so are bls_slope and bls_r
        rows += [(name, False) for name in LABOUR_METRICS]
    return rows


def task_names(axis) -> list[str]:
    b, h = axis.bias_task, axis.hint_task
    scales = [f"{b}_{s}" for s in axis.scales]
    return [b, *scales, f"{b}_dev", *[f"{t}_dev" for t in scales], h, f"{h}_dev"]


@dataclass(frozen=True)
class Layout:
    """Where a task folder's data comes from, and the utils.py that goes with it: the
    plugin's own files (``plugin_layout``) or a Hub dataset (lftf_tasks.upstream)."""

    header: str  # the comment every yaml starts with
    bias_data: str  # yaml lines that load the bias dataset
    hint_data: str  # ... and the hint dataset
    dev_split: str  # what the dev split is called
    scale_data: Callable[[str], str]  # yaml lines that keep one scale
    utils: str  # utils.py


def plugin_layout(axis, spec_ref: str, data_ref: str | None, source: str) -> Layout:
    """The plugin's: data read by lftf_tasks.hooks from a data folder. ``spec_ref`` and
    ``data_ref``: Python expressions for utils.py that give the spec and the data folder
    (None: the package's build in the lftf cache)."""
    modules, slope_functions = [], ""
    if axis.slopes:  # the aggregations the yaml files name
        modules.append("slopes")
        slope_functions += "".join(
            f"{name} = slopes.{name}\n" for name in sorted(set(SLOPE_AGGREGATIONS.values()))
        )
    if axis.labour:
        modules.append("labour")
        slope_functions += "".join(f"{name} = labour.{name}\n" for name in LABOUR_METRICS)
    slope_import = f"from lftf_tasks import {', '.join(sorted(modules))}\n" if modules else ""
    hooks = f"TaskHooks(load_axis({spec_ref}))"
    if data_ref is None:  # the prompts come from the build in the lftf cache
        hooks = f"{hooks}  # data: lftf_tasks.build.data_dir(), built on first use"
    else:
        hooks = f"TaskHooks(load_axis({spec_ref}), {data_ref})"
    utils = f'''"""lm-eval hooks of the {axis.name} axis.

Generated from {source} by lftf_tasks.generate; do not edit, edit the spec.
"""

from pathlib import Path

{slope_import}from lftf_tasks.axis import load_axis
from lftf_tasks.hooks import TaskHooks

_hooks = {hooks}
load_bias = _hooks.load_bias
load_hint = _hooks.load_hint
process_bias_results = _hooks.process_bias_results
process_hint_results = _hooks.process_hint_results
{slope_functions}'''
    if "Path" not in spec_ref + (data_ref or ""):
        utils = utils.replace("from pathlib import Path\n\n", "")
    return Layout(
        header=HEADER.format(source=source),
        bias_data="custom_dataset: !function utils.load_bias\n",
        hint_data="custom_dataset: !function utils.load_hint\n",
        dev_split="dev",
        scale_data=lambda scale: f"dataset_kwargs:\n  scale: {scale}\n",
        utils=utils,
    )


def render_tasks(axis, layout: Layout) -> dict[str, str]:
    """{file name: text} of an axis's task folder, its data as ``layout`` says."""
    b, head, dev = axis.bias_task, layout.header, layout.dev_split
    template = f"_{b}_template_yaml"
    files = {template: _bias_template(axis, layout)}
    for scale in axis.scales:
        for suffix, split in (("", None), ("_dev", dev)):
            files[f"{b}_{scale}{suffix}.yaml"] = (
                head
                + f"include: {template}\ntask: {b}_{scale}{suffix}\n"
                + (f"test_split: {split}\n" if split else "")
                + layout.scale_data(scale)
            )
    files |= _group_files(axis, head)
    files |= _hint_files(axis, layout, template)
    files["utils.py"] = layout.utils
    return files


def _bias_template(axis, layout: Layout) -> str:
    """The bias task's shared yaml, which every scale's task includes."""
    return (
        layout.header
        + layout.bias_data
        + "output_type: multiple_choice\n"
        + f"training_split: train\nvalidation_split: {layout.dev_split}\ntest_split: test\n"
        + 'doc_to_text: "{{prompt}}"\n'
        + f"# One loglikelihood request per group word, in group order: {axis.labels}\n"
        + f"doc_to_choice: {json.dumps(axis.choices)}\n"
        + "# Not used for scoring (process_results reads every log-probability); lm-eval\n"
        + "# requires it.\n"
        + "doc_to_target: 0\n"
        + 'target_delimiter: " "\n'
        + "process_results: !function utils.process_bias_results\n"
        + "metric_list:\n"
        + metric_block(metric_rows(axis))
        + f"metadata:\n  version: {axis.version}\n  num_fewshot: 0\n"
    )


def _group_files(axis, head: str) -> dict[str, str]:
    """The groups over the scales (test and dev): size-weighted means of every metric."""
    b = axis.bias_task
    aggregate = "".join(
        f"  - metric: {name}\n    weight_by_size: true\n"
        for name, _ in metric_rows(axis)
        if not name.startswith("log_p_")
    )
    slopes_note = (
        "# The slopes too: the size-weighted mean of the scales' fits (lm-eval groups average\n"
        "# their tasks' values; they cannot refit on the pooled prompts).\n"
        if axis.slopes or axis.labour
        else ""
    )
    return {
        f"_{b}{suffix}.yaml": head
        + f"group: {b}{suffix}\ntask:\n"
        + "".join(f"  - {b}_{s}{suffix}\n" for s in axis.scales)
        + '# Size-weighted means over the scales: the paper\'s "Avg." column.\n'
        + slopes_note
        + "aggregate_metric_list:\n"
        + aggregate
        + f"metadata:\n  version: {axis.version}\n"
        for suffix in ("", "_dev")
    }


def _hint_files(axis, layout: Layout, template: str) -> dict[str, str]:
    """The hint task (test) and its dev variant."""
    h, head, dev = axis.hint_task, layout.header, layout.dev_split
    return {
        f"{h}.yaml": head
        + f"include: {template}\ntask: {h}\n"
        + layout.hint_data
        + f"training_split: null\nvalidation_split: {dev}\ntest_split: test\n"
        + "process_results: !function utils.process_hint_results\n"
        + "metric_list:\n"
        + metric_block(metric_rows(axis, hint=True)),
        f"{h}_dev.yaml": head + f"include: {h}.yaml\ntask: {h}_dev\ntest_split: {dev}\n",
    }


def builtin_task_files(name: str) -> dict[str, str]:
    axis = load_axis(name)
    layout = plugin_layout(
        axis,
        spec_ref=json.dumps(name),
        data_ref=None,
        source=f"lftf_tasks/axes/{name}.yaml",
    )
    return render_tasks(axis, layout)


def folder_files(spec: str | Path) -> dict[str, str]:
    """Everything a self-contained task folder for a spec (file or built-in name) holds."""
    axis = load_axis(spec)
    spec = axis.source
    layout = plugin_layout(
        axis,
        spec_ref='Path(__file__).parent / "axis.yaml"',
        data_ref='Path(__file__).parent / "data"',
        source=Path(spec).name,
    )
    files = render_tasks(axis, layout)
    files["axis.yaml"] = Path(spec).read_text(encoding="utf-8")
    files.update({f"data/{rel}": text for rel, text in data_files(axis).items()})
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lftf-build-axis",
        description="Turn a bias-axis spec (YAML/JSON) into an lm-eval task folder.",
        epilog=__doc__.split("\n\n")[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "spec", help="the axis spec file (YAML/JSON; see lftf_tasks/axes/*.yaml) or a built-in axis"
    )
    parser.add_argument("--output-dir", required=True, type=Path, help="the task folder to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    try:
        files = folder_files(args.spec)
    except (AxisSpecError, ReferenceDataError) as err:
        parser.exit(2, f"lftf-build-axis: {err}\n")
    try:
        check_output_dir(args.output_dir, args.overwrite)
    except FileExistsError as err:
        parser.exit(2, f"lftf-build-axis: {err}\n")
    with atomic_output_dir(args.output_dir, args.overwrite) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
    axis = load_axis(args.spec)
    tasks = f"{axis.bias_task},{axis.hint_task}"
    print(
        f"wrote {len(files)} files to {args.output_dir}\n"
        f"  lm_eval --include_path {args.output_dir} --tasks {tasks} ...\n"
        f"  lftf-train run --axis {args.spec} ..."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
