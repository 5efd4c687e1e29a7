"""The steps behind lftf-train locate, finetune, run and sweep: load, locate, fine-tune,
evaluate with lm-eval, and write one output folder with its provenance."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from accelerate import Accelerator

from lftf_tasks.outputs import atomic_output_dir, check_output_dir, provenance, write_json
from lftf_tasks.slopes import SLOPE_METRICS
from lftf_train import models, plots
from lftf_train.adapters import wrap_edited, wrap_for_training
from lftf_train.config import BMI_SOURCES, LFTFConfig
from lftf_train.editors import dama, sequence
from lftf_train.editors.common import corpus, down_proj_name, read_corpus, second_moments
from lftf_train.evaluate import (
    Evaluation,
    bias_summary,
    general_metrics,
    lm_eval_model_args,
    run_lm_eval,
    summary_columns,
)
from lftf_train.export import save_adapter, save_merged
from lftf_train.locate import choose_blocks, locate_blocks, ranking_key
from lftf_train.prefix import PrefixCache
from lftf_train.scoring import target_token_ids
from lftf_train.tables import cell, comparison_table, markdown_table
from lftf_train.train import finetune

SLOPE_KEYS = set(SLOPE_METRICS)


def footer(info: dict, seed: int) -> str:
    """The provenance line under every figure."""
    return f"{info['produced_by']}  {info.get('model', '')}  seed {seed}  {info['date']}"


def run_record(config, resolved: str, **extra) -> dict:
    """What every command's record states: the provenance, the model, the seed, the config,
    the axis and the names (and dev tasks) of its metrics."""
    axis = config.load_axis()
    return provenance(
        model=config.model,
        resolved_model=resolved,
        seed=config.seed,
        config=config.to_dict(),
        axis=axis.name,
        metrics=axis.metrics,
        dev_tasks=[f"{axis.bias_task}_dev", f"{axis.hint_task}_dev"],
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


def _load(config: LFTFConfig, device=None):
    """The model and tokenizer, refused before any work if a target word is not one token."""
    model, tokenizer, resolved = models.load(
        config.model, config.dtype, device=device, device_map=config.device_map
    )
    target_token_ids(tokenizer, config.load_axis())
    return model, tokenizer, resolved


def run_locate(config: LFTFConfig, out_dir: Path, overwrite: bool, seeds=None, log=print) -> dict:
    check_output_dir(out_dir, overwrite)
    model, tokenizer, resolved = _load(config)
    report = locate_blocks(model, tokenizer, config, seeds, with_skip=True)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        write_locate_outputs(tmp, report, resolved)
        config.save(tmp / "lftf_config.json")
    for key in report["ranking"]:
        name = "skip" if key == "skip" else f"BMI {key}"
        chosen = " (used for --blocks auto)" if key == ranking_key(config) else ""
        log(f"{name:>17}: top blocks {report['ranking'][key][:5]}{chosen}")
        if "robustness" in report:
            rob = report["robustness"][key]
            log(f"{'':>17}  mean per-block variance over seeds {seeds}: {rob['mean_variance']:.3e}")
    log(f"wrote {out_dir}/bmi.json, bmi.png and locators.png")
    return report


def run_finetune(
    config: LFTFConfig,
    out_dir: Path,
    overwrite: bool,
    *,
    merged: bool = False,
    naive: bool = False,
    evaluation: Evaluation | None = None,
    log=print,
) -> dict:
    """Locate (when blocks='auto'), fine-tune, save; with ``evaluation`` also lm-eval before
    and after (the axis's tasks and evaluation.general_tasks).

    Under ``accelerate launch`` every process trains on its share of each batch; only the
    main process logs, evaluates and writes.
    """
    check_output_dir(out_dir, overwrite)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    log = log if main else _silent
    model, tokenizer, resolved = _load(config, device=accelerator.device)
    axis = config.load_axis()
    blocks, located = choose_blocks(model, tokenizer, config, log=log)
    log(
        f"training blocks {blocks} ({config.method}, modules {','.join(config.modules)}, "
        f"terms {','.join(config.terms)}, lr {config.lr:g}, {config.epochs} epochs)"
    )
    model_args = lm_eval_model_args(resolved, config)
    before = None
    if evaluation is not None and main:
        tasks = evaluation.tasks(axis)
        log(f"evaluating the original model with lm-eval ({', '.join(tasks)}) ...")
        before = _evaluate(model_args, axis, evaluation)

    peft_model = wrap_for_training(model, config, blocks)
    n_trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    result = finetune(
        peft_model,
        tokenizer,
        config,
        blocks,
        naive=naive,
        log=log,
        accelerator=accelerator,
        show_progress=main,
    )
    if not main:
        accelerator.wait_for_everyone()
        return {}

    run_info = run_record(
        config,
        resolved,
        blocks=blocks,
        trainable_parameters=n_trainable,
        loss="mean over prompts of " + " ".join(f"-log P({t}|p)" for t in config.terms),
        best_epoch=result.best_epoch,
        history=result.history,
        seconds_per_epoch=result.seconds_per_epoch,
        step_losses=result.step_losses,
        training_path="naive (full forward per step)" if naive else "cached prefix",
        processes=accelerator.num_processes,
        bmi=located,
        load_with=f"lm_eval --model hf --model_args {model_args},peft={out_dir}",
    )
    with atomic_output_dir(out_dir, overwrite) as tmp:
        save_adapter(peft_model, tokenizer, tmp, config, run_info)
        plots.plot_history(
            result.history,
            tmp / "training.png",
            title=f"LFTF on {config.model}: blocks {blocks}, lr {config.lr:g}",
            axis=axis,
            footer=footer(run_info, config.seed),
        )
        if located:
            write_locate_outputs(tmp, located, resolved)
        if evaluation is not None:
            log("evaluating the fine-tuned model with lm-eval (pretrained=BASE,peft=OUT) ...")
            after = _evaluate(f"{model_args},peft={tmp}", axis, evaluation)
            _write_summary(tmp, run_info, config, blocks, before, after, evaluation, log)
        if merged:
            save_merged(peft_model, tokenizer, tmp / "merged")
    log(f"wrote {out_dir}  (lm-eval: --model_args pretrained={resolved},peft={out_dir})")
    accelerator.wait_for_everyone()
    return run_info


def _evaluate(model_args: str, axis, evaluation: Evaluation) -> dict:
    return run_lm_eval(
        model_args,
        evaluation.tasks(axis),
        limit=evaluation.limit,
        include_path=evaluation.include_path,
    )


def _write_summary(folder, run_info, config, blocks, before, after, evaluation, log) -> None:
    """summary.md (lm-eval before and after, side by side) and the run record with both."""
    axis = config.load_axis()
    rows = {
        name: {**bias_summary(r, axis), **general_metrics(r, evaluation.general_tasks)}
        for name, r in (("original", before), ("LFTF", after))
    }
    general = sorted(set(rows["original"]) - {k for k, _ in summary_columns(axis)})
    general = [(k, k) for k in general if not k.endswith("_stderr") and k not in SLOPE_KEYS]
    table = comparison_table(rows, summary_columns(axis) + general, baseline="original")
    run_info["evaluation"] = {
        "rows": rows,
        "limit": evaluation.limit,
        "general_tasks": evaluation.general_tasks,
        "lm_eval_before": before["results"],
        "lm_eval_after": after["results"],
    }
    write_json(folder / "lftf_run.json", run_info)
    (folder / "summary.md").write_text(
        f"# LFTF on {config.model}\n\nBlocks {blocks}; config in lftf_config.json; "
        f"{run_info['produced_by']}, seed {config.seed}, {run_info['date']}.\n\n{table}\n"
    )
    log("\n" + table)


def run_sweep(
    config: LFTFConfig, lrs: list[float], out_dir: Path, overwrite: bool, log=print
) -> dict:
    """Train once per learning rate with select='best_dev'; choose on the dev splits only.

    The chosen learning rate is the one whose best epoch has the lowest dev bias (every best
    epoch already keeps min_ub_ratio of the dev hint score). Nothing is saved but the
    comparison: re-run ``finetune`` with the printed flags to get the adapter.
    """
    check_output_dir(out_dir, overwrite)
    config = dataclasses.replace(config, select="best_dev")
    axis = config.load_axis()
    base, tokenizer, resolved = _load(config)
    blocks, located = choose_blocks(base, tokenizer, config, log=log)
    cache = PrefixCache.build(base, tokenizer, min(blocks), axis, config.eval_batch_size)
    del base  # each learning rate starts from freshly loaded weights
    runs = {}
    for lr in lrs:
        log(f"--- lr {lr:g}, blocks {blocks}, up to {config.epochs} epochs")
        model, _, _ = _load(config)
        trial = dataclasses.replace(config, lr=lr)
        model = wrap_for_training(model, trial, blocks)
        result = finetune(model, tokenizer, trial, blocks, log=log, prefix_cache=cache)
        runs[f"{lr:g}"] = {
            "lr": lr,
            "best_epoch": result.best_epoch,
            "best": result.history[result.best_epoch],
            "history": result.history,
        }
    bias = axis.metrics["bias"]
    chosen = min(runs.values(), key=lambda r: (r["best"]["dev"][bias], r["lr"]))
    flags = (
        f"--blocks {','.join(map(str, blocks))} --lr {chosen['lr']:g} "
        f"--epochs {max(chosen['best_epoch'], 1)}"
    )
    info = run_record(
        config,
        resolved,
        blocks=blocks,
        runs=runs,
        chosen_lr=chosen["lr"],
        chosen_epochs=chosen["best_epoch"],
        finetune_flags=flags,
        bmi=located,
    )
    table = sweep_table(runs, chosen, axis)
    hint = axis.metrics["hint"]
    with atomic_output_dir(out_dir, overwrite) as tmp:
        write_json(tmp / "sweep.json", info)
        (tmp / "sweep.md").write_text(
            f"# Learning-rate sweep on the dev splits: {config.model}, blocks {blocks}\n\n"
            f"{info['produced_by']}, seed {config.seed}, {info['date']}; each run keeps its best "
            f"dev epoch (dev {hint} >= {config.min_ub_ratio:g} x original).\n\n{table}\n\n"
            f"Chosen: `lftf-train finetune {flags}`\n"
        )
        plots.plot_sweep(
            {f"lr {k}": r["history"] for k, r in runs.items()},
            tmp / "sweep.png",
            title=f"{config.model}: blocks {blocks}",
            axis=axis,
            footer=footer(info, config.seed),
        )
    log("\n" + table + f"\n\nchosen on dev: lftf-train finetune {flags}")
    return info


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


def run_dama(config, out_dir: Path, overwrite: bool, log=print) -> dict:
    """DAMA: value vectors, the dev sweep over layer sets and ranks, the chosen projections
    applied and saved as a PEFT adapter of the edited down-projections."""
    check_output_dir(out_dir, overwrite)
    model, tokenizer, resolved = _load(config)
    info, peft_model = apply_dama(model, tokenizer, resolved, config, out_dir, log=log)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        write_dama_outputs(tmp, peft_model, tokenizer, config, info)
    log(f"wrote {out_dir}  ({info['load_with']})")
    return info


def apply_dama(model, tokenizer, resolved: str, config, out_dir, log=print) -> tuple[dict, object]:
    """Run DAMA on ``model`` in place: (its record, the model as a PeftModel whose adapter,
    saved to ``out_dir``, holds the edited down-projections)."""
    moments = None
    if config.whitening:
        texts = (
            read_corpus(config.cov_text)
            if config.cov_text
            else corpus(model, tokenizer, resolved, config.seed, config.cov_tokens)
        )
        moments = lambda layers: second_moments(model, tokenizer, texts, layers)  # noqa: E731
    result = dama.run_dama(model, tokenizer, config, log=log, moments_fn=moments)
    names = [down_proj_name(model, layer) for layer in result["chosen"]["layers"]]
    model_args = lm_eval_model_args(resolved, config)
    info = run_record(
        config,
        resolved,
        edited_modules=names,
        **result,
        load_with=f"lm_eval --model hf --model_args {model_args},peft={out_dir}",
    )
    return info, wrap_edited(model, names)


def write_dama_outputs(folder: Path, peft_model, tokenizer, config, info: dict) -> None:
    axis = config.load_axis()
    save_adapter(peft_model, tokenizer, folder, config, info, ("dama_config.json", "dama.json"))
    table = dama_table(info, axis)
    chosen = info["chosen"]
    (folder / "dama_sweep.md").write_text(
        f"# DAMA on {config.model}: the dev sweep\n\n{info['produced_by']}, seed "
        f"{config.seed}, {info['date']}; {info['requests']} requests, targets "
        f"{', '.join(config.targets)}. Chosen: blocks {dama.span(chosen['layers'])}, rank "
        f"{chosen['rank']} (the lowest |dev a_s_relative| among settings whose dev "
        f"{axis.metrics['hint']} keeps {config.min_ub_ratio:g} x the original's).\n\n{table}\n"
    )
    plots.plot_dama_sweep(
        info["sweep"],
        info["original_dev"],
        folder / "dama_sweep.png",
        title=f"DAMA on {config.model}: dev splits",
        axis=axis,
        footer=footer(info, config.seed),
    )


def dama_table(info: dict, axis) -> str:
    """The dev sweep, one line per (layer set, rank), after the original model's line."""
    m = axis.metrics
    keys = ["a_s", "a_s_relative", "a_f", m["bias"], m["relative"], m["mass"], m["hint"]]
    chosen = info["chosen"]
    lines = [["(original)", "–", *[cell(info["original_dev"], k) for k in keys], "–"]]
    for e in info["sweep"]:
        mark = (
            " **chosen**" if (e["layers"], e["rank"]) == (chosen["layers"], chosen["rank"]) else ""
        )
        layers = f"{e['layers'][0]}-{e['layers'][-1]}" if len(e["layers"]) > 1 else e["layers"][0]
        lines.append(
            [f"{layers}{mark}", e["rank"], *[cell(e["dev"], k) for k in keys], e["seconds"]]
        )
    header = ["blocks", "rank", *[f"dev {k}" for k in keys], "seconds"]
    return markdown_table(header, lines)


def run_edit(config, out_dir: Path, overwrite: bool, log=print) -> dict:
    """ROME, R-ROME or MEMIT over a sequence of requests; the edited down-projections saved
    as a PEFT adapter with edits.json."""
    check_output_dir(out_dir, overwrite)
    model, tokenizer, resolved = _load(config)
    info, peft_model = apply_edits(model, tokenizer, resolved, config, out_dir, log=log)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        save_adapter(peft_model, tokenizer, tmp, config, info, ("edit_config.json", "edits.json"))
    summary = info["summary"]
    log(
        f"{config.editor}: {summary['edits']} edits, mean P(target) "
        f"{summary['mean_p_target_before']:.3f} -> {summary['mean_p_target_after']:.3f} "
        f"({summary['success_rate']:.0%} made the target the likelier pronoun)"
    )
    log(f"wrote {out_dir}  ({info['load_with']})")
    return info


def apply_edits(model, tokenizer, resolved: str, config, out_dir, log=print) -> tuple[dict, object]:
    """Edit ``model`` in place: (the record, the model as a PeftModel whose adapter, saved
    to ``out_dir``, holds the edited down-projections)."""

    def texts() -> list[str]:
        if config.cov_text:
            return read_corpus(config.cov_text)
        return corpus(model, tokenizer, resolved, config.seed, config.cov_tokens)

    result = sequence.run_edits(model, tokenizer, config, texts, log=log)
    names = [down_proj_name(model, block) for block in result["blocks"]]
    model_args = lm_eval_model_args(resolved, config)
    info = run_record(
        config,
        resolved,
        corpus=config.cov_text or f"{config.cov_tokens} tokens sampled from the model",
        edited_modules=names,
        **result,
        load_with=f"lm_eval --model hf --model_args {model_args},peft={out_dir}",
    )
    return info, wrap_edited(model, names)


def _silent(*args, **kwargs) -> None:
    pass
