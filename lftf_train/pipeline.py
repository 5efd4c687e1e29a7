"""The steps behind lftf-train's commands, over the Python API: load, run a method (and
lm-eval before and after), write one output folder with its provenance; locate; sweep."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from accelerate import Accelerator, PartialState

from lftf_tasks.outputs import atomic_output_dir, check_output_dir, write_json
from lftf_tasks.slopes import SLOPE_METRICS
from lftf_tasks.transfer import per_occupation_gap
from lftf_train import models, plots
from lftf_train.api import DebiasResult, debias
from lftf_train.evaluate import (
    TRANSFER_COLUMNS,
    Evaluation,
    bias_summary,
    general_metrics,
    lm_eval_model_args,
    run_lm_eval,
    summary_columns,
    transfer_summary,
)
from lftf_train.locating import choose_blocks, locate_blocks, ranking_key
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import finetune
from lftf_train.prefix import PrefixCache
from lftf_train.records import CONFIG_FILE, footer, run_record, write_locate_outputs
from lftf_train.registry import Context
from lftf_train.scoring import target_token_ids
from lftf_train.tables import cell, comparison_table, markdown_table

SLOPE_KEYS = set(SLOPE_METRICS)


def load(config, device=None):
    """The model and tokenizer, refused before any work if a target word is not one token."""
    model, tokenizer, resolved = models.load(
        config.model, config.dtype, device=device, device_map=config.device_map
    )
    target_token_ids(tokenizer, config.load_axis())
    return model, tokenizer, resolved


def run_locate(config, out_dir: Path, overwrite: bool, seeds=None, log=print) -> dict:
    check_output_dir(out_dir, overwrite)
    model, tokenizer, resolved = load(config)
    report = locate_blocks(model, tokenizer, config, seeds, with_skip=True)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        write_locate_outputs(tmp, report, resolved)
        config.save(tmp / CONFIG_FILE)  # fields every method that locates shares
    for key in report["ranking"]:
        name = "skip" if key == "skip" else f"BMI {key}"
        chosen = " (used for --blocks auto)" if key == ranking_key(config) else ""
        log(f"{name:>17}: top blocks {report['ranking'][key][:5]}{chosen}")
        if "robustness" in report:
            rob = report["robustness"][key]
            log(f"{'':>17}  mean per-block variance over seeds {seeds}: {rob['mean_variance']:.3e}")
    log(f"wrote {out_dir}/bmi.json, bmi.png and locators.png")
    return report


def run_method(
    config,
    out_dir: Path,
    overwrite: bool,
    *,
    merged: bool = False,
    evaluation: Evaluation | None = None,
    log=print,
) -> dict:
    """Any registered method from its config: load, (lm-eval the original,) apply, save the
    output folder (adapter, config, record, the method's files), (lm-eval the saved output
    with ``peft=`` and write summary.md). Returns the run record.

    Under ``accelerate launch`` every process trains on its share of each batch; only the
    main process logs, evaluates and writes.
    """
    check_output_dir(out_dir, overwrite)
    state = PartialState(cpu=not _cuda())
    log = log if state.is_main_process else _silent
    model, tokenizer, resolved = load(config, device=state.device)
    before = None
    if evaluation is not None and state.is_main_process:
        tasks = ", ".join(evaluation.tasks(config.load_axis()))
        log(f"evaluating the original model with lm-eval ({tasks}) ...")
        before = _evaluate(lm_eval_model_args(resolved, config), None, config, evaluation)
    context = Context(resolved_model=resolved, log=log, accelerator=Accelerator(cpu=not _cuda()))
    result = debias(model, tokenizer, config, context=context)
    if not state.is_main_process:
        state.wait_for_everyone()
        return {}
    with atomic_output_dir(out_dir, overwrite) as tmp:
        result.write(tmp, final=out_dir, merged=merged)
        if evaluation is not None:
            log("evaluating the output with lm-eval, as saved (pretrained=BASE,peft=OUT) ...")
            after = _evaluate(result.lm_eval_model_args(tmp), result, config, evaluation)
            _write_summary(tmp, result, before, after, evaluation, log)
    if result.adapted.summary:
        log(result.adapted.summary)
    log(f"wrote {out_dir}  ({result.record['load_with']})")
    state.wait_for_everyone()
    return result.record


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _evaluate(model_args: str, result: DebiasResult | None, config, evaluation: Evaluation):
    return run_lm_eval(
        model_args,
        evaluation.tasks(config.load_axis()),
        **evaluation.lm_eval_kwargs(),
        system_instruction=result.system_instruction if result else None,
        log_samples=True,  # the per-occupation gaps of the transfer figure
    )


def _write_summary(folder, result: DebiasResult, before, after, evaluation, log) -> None:
    """summary.md (lm-eval before and after, side by side) and the record with both."""
    config, record = result.config, result.record
    axis, name = config.load_axis(), result.adapted.label or result.method.upper()
    rows = {
        label: {**bias_summary(r, axis), **general_metrics(r, evaluation.general_tasks)}
        for label, r in (("original", before), (name, after))
    }
    general = sorted(set(rows["original"]) - {k for k, _ in summary_columns(axis)})
    general = [(k, k) for k in general if not k.endswith("_stderr") and k not in SLOPE_KEYS]
    table = comparison_table(rows, summary_columns(axis) + general, baseline="original")
    transfer = _transfer_section(folder, result, before, after, name)
    for label, r in (("original", before), (name, after)):
        rows[label].update(transfer_summary(r))
    record["evaluation"] = {
        "rows": rows,
        "limit": evaluation.limit,
        "general_tasks": evaluation.general_tasks,
        "general_limit": evaluation.general_limit,
        "lm_eval_before": before["results"],
        "lm_eval_after": after["results"],
    }
    write_json(folder / "lftf_run.json", record)
    (folder / "summary.md").write_text(
        f"# {name} on {config.model}\n\n{result.adapted.settings}; config in {CONFIG_FILE}; "
        f"{record['produced_by']}, seed {config.seed}, {record['date']}.\n\n{table}\n"
        f"{transfer}"
    )
    log("\n" + table + transfer)


def _transfer_section(folder, result: DebiasResult, before, after, name: str) -> str:
    """summary.md's WinoBias/Winogender table and transfer.png (none off the gender axis)."""
    if "winogender_next" not in before["results"]:
        return ""
    rows = {"original": transfer_summary(before), name: transfer_summary(after)}
    table = comparison_table(rows, TRANSFER_COLUMNS, baseline="original")
    occupations = {
        label: per_occupation_gap(r["samples"])
        for label, r in (("original", before), (name, after))
    }
    plots.plot_transfer(
        occupations,
        folder / "transfer.png",
        title=f"Winogender: gap against the labour market, {result.config.model}",
        footer=footer(result.record, result.config.seed),
    )
    return (
        "\n## Transfer: WinoBias and Winogender (benchmarks written by others)\n\n"
        f"{table}\n\n![transfer](transfer.png)\n"
    )


def run_sweep(config, lrs: list[float], out_dir: Path, overwrite: bool, log=print) -> dict:
    """Train once per learning rate with select='best_dev'; choose on the dev splits only.

    The chosen learning rate is the one whose best epoch has the lowest dev bias (every best
    epoch already keeps min_ub_ratio of the dev hint score). Nothing is saved but the
    comparison: re-run ``finetune`` with the printed flags to get the adapter.
    """
    check_output_dir(out_dir, overwrite)
    config = dataclasses.replace(config, select="best_dev")
    base, tokenizer, resolved = load(config)
    blocks, located = choose_blocks(base, tokenizer, config, log=log)
    axis = config.load_axis()
    cache = PrefixCache.build(base, tokenizer, min(blocks), axis, config.eval_batch_size)
    del base  # each learning rate starts from freshly loaded weights
    runs = {f"{lr:g}": _sweep_run(config, lr, blocks, tokenizer, cache, log) for lr in lrs}
    chosen = min(runs.values(), key=lambda r: (r["best"]["dev"][axis.metrics["bias"]], r["lr"]))
    flags = (
        f"--blocks {','.join(map(str, blocks))} --lr {chosen['lr']:g} "
        f"--epochs {max(chosen['best_epoch'], 1)}"
    )
    details = {
        "blocks": blocks,
        "runs": runs,
        "chosen_lr": chosen["lr"],
        "chosen_epochs": chosen["best_epoch"],
        "finetune_flags": flags,
        "bmi": located,
    }
    info = run_record(config, "sweep", resolved, details)
    table = sweep_table(runs, chosen, axis)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        _write_sweep(tmp, info, config, blocks, table, flags)
    log("\n" + table + f"\n\nchosen on dev: lftf-train finetune {flags}")
    return info


def _sweep_run(config, lr: float, blocks, tokenizer, cache, log) -> dict:
    log(f"--- lr {lr:g}, blocks {blocks}, up to {config.epochs} epochs")
    model, _, _ = load(config)
    trial = dataclasses.replace(config, lr=lr)
    model = wrap_for_training(model, trial, blocks)
    result = finetune(model, tokenizer, trial, blocks, log=log, prefix_cache=cache)
    return {
        "lr": lr,
        "best_epoch": result.best_epoch,
        "best": result.history[result.best_epoch],
        "history": result.history,
    }


def _write_sweep(folder: Path, info: dict, config, blocks, table: str, flags: str) -> None:
    axis = config.load_axis()
    write_json(folder / "sweep.json", info)
    (folder / "sweep.md").write_text(
        f"# Learning-rate sweep on the dev splits: {config.model}, blocks {blocks}\n\n"
        f"{info['produced_by']}, seed {config.seed}, {info['date']}; each run keeps its best "
        f"dev epoch (dev {axis.metrics['hint']} >= {config.min_ub_ratio:g} x original).\n\n"
        f"{table}\n\nChosen: `lftf-train finetune {flags}`\n"
    )
    plots.plot_sweep(
        {f"lr {k}": r["history"] for k, r in info["result"]["runs"].items()},
        folder / "sweep.png",
        title=f"{config.model}: blocks {blocks}",
        axis=axis,
        footer=footer(info, config.seed),
    )


def sweep_table(runs: dict, chosen: dict, axis) -> str:
    """One line per learning rate at its best epoch, after the untrained model's line."""
    m = axis.metrics
    keys = [m["bias"], m["relative"], m["mass"], m["hint"]]
    original = next(iter(runs.values()))["history"][0]["dev"]
    lines = [["(original)", "–", *[cell(original, k) for k in keys]]]
    for r in runs.values():
        mark = " **chosen**" if r is chosen else ""
        best = r["best"]["dev"]
        lines.append([f"{r['lr']:g}{mark}", r["best_epoch"], *[cell(best, k) for k in keys]])
    return markdown_table(["lr", "best epoch", *[f"dev {k}" for k in keys]], lines)


def _silent(*args, **kwargs) -> None:
    pass
