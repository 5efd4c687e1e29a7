"""The steps behind each lftf-train command: locate, fine-tune, evaluate, write outputs."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
from accelerate import Accelerator
from tqdm.auto import tqdm

from lftf_train import data, locate, models, plots
from lftf_train.adapters import wrap_for_training
from lftf_train.blocks import num_blocks, resolve_blocks
from lftf_train.config import LFTFConfig
from lftf_train.evaluate import bias_summary, comparison_table, lm_eval_model_args, run_lm_eval
from lftf_train.export import save_adapter, save_merged
from lftf_train.outputs import atomic_output_dir, check_output_dir, provenance, write_json
from lftf_train.scoring import target_token_ids
from lftf_train.train import finetune


def ranking_key(config: LFTFConfig) -> str:
    """Which locate ranking blocks='auto' follows: a BMI source or 'skip'."""
    return "skip" if config.locator == "skip" else config.bmi_source


def locate_blocks(
    model,
    tokenizer,
    config: LFTFConfig,
    seeds: list[int] | None = None,
    show_progress: bool = True,
    with_skip: bool | None = None,
) -> dict:
    """Per-block scores on config.locate_prompts sampled train prompts of the axis: BMI from
    both sources, and the skip locator when asked (default: when config.locator is 'skip';
    it costs a forward pass per block)."""
    seeds = seeds or [config.seed]
    axis = config.load_axis()
    if with_skip is None:
        with_skip = config.locator == "skip"
    keys = [*locate.SOURCES, *(["skip"] if with_skip else [])]
    scores = {key: [] for key in keys}
    jobs = [(key, seed) for seed in seeds for key in keys]
    for key, seed in tqdm(jobs, desc="locate", disable=None if show_progress else True):
        prompts = data.sample_prompts("train", config.locate_prompts, seed, axis)
        if key == "skip":
            scores[key].append(
                locate.skip_scores(
                    model, tokenizer, prompts, batch_size=config.eval_batch_size, axis=axis
                )
            )
        else:
            scores[key].append(
                locate.bmi_scores(model, tokenizer, prompts, key, config.eval_batch_size)
            )
    report = {
        "model": config.model,
        "axis": axis.name,
        "n_prompts": config.locate_prompts,
        "prompt_split": f"{axis.bias_task}/train",
        "seeds": seeds,
        "locator": config.locator,
        "bmi_source": config.bmi_source,
        "used_for_auto": ranking_key(config),
        "scores": {k: scores[k][0] for k in keys},
        "ranking": {k: locate.ranking(scores[k][0]) for k in keys},
    }
    report["top_block"] = {k: report["ranking"][k][0] for k in keys}
    if len(seeds) > 1:
        report["scores_per_seed"] = scores
        report["robustness"] = {k: locate.seed_robustness(scores[k]) for k in keys}
    return report


def write_locate_outputs(folder: Path, report: dict, resolved_model: str) -> None:
    info = {**report, "resolved_model": resolved_model, **provenance()}
    write_json(folder / "bmi.json", info)
    footer = f"{info['produced_by']}  seed {report['seeds'][0]}  {info['date']}"
    prompts = f"{report['n_prompts']} {report['prompt_split']} prompts"
    plots.plot_bmi(
        {s: report["scores"][s] for s in locate.SOURCES},
        folder / "bmi.png",
        title=f"BMI per block: {report['model']} ({prompts})",
        footer=footer,
    )
    if "skip" in report["scores"]:
        names = {"hidden_states": "BMI (hidden_states)", "block_io": "BMI (block_io)"}
        plots.plot_locators(
            {names.get(k, "skip: |change in bias|"): v for k, v in report["scores"].items()},
            folder / "locators.png",
            title=f"Locators side by side: {report['model']} ({prompts})",
            footer=footer,
        )


def run_locate(config: LFTFConfig, out_dir: Path, overwrite: bool, seeds=None, log=print) -> dict:
    check_output_dir(out_dir, overwrite)
    model, tokenizer, resolved = models.load(
        config.model, config.dtype, device_map=config.device_map
    )
    target_token_ids(tokenizer, config.load_axis())
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
    evaluate: bool = False,
    eval_limit: int | None = None,
    log=print,
) -> dict:
    """Locate (when blocks='auto'), fine-tune, save; with ``evaluate`` also lm-eval before/after.

    Under ``accelerate launch`` every process trains on its share of each batch; only the
    main process logs, evaluates and writes.
    """
    check_output_dir(out_dir, overwrite)
    accelerator = Accelerator(cpu=not torch.cuda.is_available())
    main = accelerator.is_main_process
    if not main:
        log = _silent
    model, tokenizer, resolved = models.load(
        config.model, config.dtype, device=accelerator.device, device_map=config.device_map
    )
    axis = config.load_axis()
    target_token_ids(tokenizer, axis)  # fail before any work if a target word is not 1 token
    report = None
    if config.blocks == "auto":
        report = locate_blocks(model, tokenizer, config)
        key = ranking_key(config)
        log(f"locator {key}: top blocks {report['ranking'][key][:5]}")
    ranking = report["ranking"][ranking_key(config)] if report else None
    blocks = resolve_blocks(config.blocks, num_blocks(model), ranking, config.num_blocks)
    log(
        f"training blocks {blocks} ({config.method}, modules {','.join(config.modules)}, "
        f"terms {','.join(config.terms)}, lr {config.lr:g}, {config.epochs} epochs)"
    )

    model_args = lm_eval_model_args(resolved, config)
    before = None
    if evaluate and main:
        tasks = (axis.bias_task, axis.hint_task)
        log(f"evaluating the original model with lm-eval ({', '.join(tasks)}) ...")
        before = run_lm_eval(model_args, tasks, limit=eval_limit)

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

    run_info = provenance(
        model=config.model,
        resolved_model=resolved,
        blocks=blocks,
        trainable_parameters=n_trainable,
        seed=config.seed,
        config=config.to_dict(),
        axis=axis.name,
        history_keys=_history_keys(axis),
        loss="mean over prompts of " + " ".join(f"-log P({t}|p)" for t in config.terms),
        best_epoch=result.best_epoch,
        history=result.history,
        seconds_per_epoch=result.seconds_per_epoch,
        step_losses=result.step_losses,
        training_path="naive (full forward per step)" if naive else "cached prefix",
        processes=accelerator.num_processes,
        bmi=report,
        load_with=f"lm_eval --model hf --model_args {model_args},peft={out_dir}",
    )
    with atomic_output_dir(out_dir, overwrite) as tmp:
        save_adapter(peft_model, tokenizer, tmp, config, run_info)
        footer = f"{run_info['produced_by']}  seed {config.seed}  {run_info['date']}"
        plots.plot_history(
            result.history,
            tmp / "training.png",
            title=f"LFTF on {config.model}: blocks {blocks}, lr {config.lr:g}",
            footer=footer,
        )
        if report:
            write_locate_outputs(tmp, report, resolved)
        if evaluate:
            log("evaluating the fine-tuned model with lm-eval (pretrained=BASE,peft=OUT) ...")
            after = run_lm_eval(f"{model_args},peft={tmp}", tasks, limit=eval_limit)
            rows = {"original": bias_summary(before, axis), "LFTF": bias_summary(after, axis)}
            table = comparison_table(rows, baseline="original", axis=axis)
            run_info["evaluation"] = {
                "rows": rows,
                "limit": eval_limit,
                "lm_eval_before": before["results"],
                "lm_eval_after": after["results"],
            }
            write_json(tmp / "lftf_run.json", run_info)
            (tmp / "summary.md").write_text(
                f"# LFTF on {config.model}\n\nBlocks {blocks}; config in lftf_config.json; "
                f"{run_info['produced_by']}, seed {config.seed}, {run_info['date']}.\n\n"
                f"{table}\n"
            )
            log("\n" + table)
        if merged:
            save_merged(peft_model, tokenizer, tmp / "merged")
    log(f"wrote {out_dir}  (lm-eval: --model_args pretrained={resolved},peft={out_dir})")
    accelerator.wait_for_everyone()
    return run_info


def run_sweep(
    config: LFTFConfig, lrs: list[float], out_dir: Path, overwrite: bool, log=print
) -> dict:
    """Train once per learning rate with select='best_dev'; choose on the dev splits only.

    The chosen learning rate is the one whose best epoch has the lowest GenBiasEval-dev AFGB
    (every best epoch already keeps min_ub_ratio of the dev UB). Nothing is saved but the
    comparison: re-run ``finetune`` with the printed flags to get the adapter.
    """
    check_output_dir(out_dir, overwrite)
    config = dataclasses.replace(config, select="best_dev")
    model, tokenizer, resolved = models.load(
        config.model, config.dtype, device_map=config.device_map
    )
    axis = config.load_axis()
    target_token_ids(tokenizer, axis)
    report = None
    if config.blocks == "auto":
        report = locate_blocks(model, tokenizer, config)
    ranking = report["ranking"][ranking_key(config)] if report else None
    blocks = resolve_blocks(config.blocks, num_blocks(model), ranking, config.num_blocks)
    del model
    runs = {}
    for lr in lrs:
        log(f"--- lr {lr:g}, blocks {blocks}, up to {config.epochs} epochs")
        base, _, _ = models.load(config.model, config.dtype, device_map=config.device_map)
        trial = dataclasses.replace(config, lr=lr)
        result = finetune(wrap_for_training(base, trial, blocks), tokenizer, trial, blocks, log=log)
        best = result.history[result.best_epoch]
        runs[f"{lr:g}"] = {
            "lr": lr,
            "best_epoch": result.best_epoch,
            "best": best,
            "history": result.history,
        }
    chosen = min(runs.values(), key=lambda r: (r["best"]["dev"]["afgb"], r["lr"]))
    flags = (
        f"--blocks {','.join(map(str, blocks))} --lr {chosen['lr']:g} "
        f"--epochs {max(chosen['best_epoch'], 1)}"
    )
    info = provenance(
        model=config.model,
        resolved_model=resolved,
        blocks=blocks,
        seed=config.seed,
        config=config.to_dict(),
        axis=axis.name,
        history_keys=_history_keys(axis),
        runs=runs,
        chosen_lr=chosen["lr"],
        chosen_epochs=chosen["best_epoch"],
        finetune_flags=flags,
        bmi=report,
    )
    m = axis.metrics
    lines = [
        f"| lr | best epoch | dev {m['bias']} | dev {m['relative']} | dev {m['mass']} "
        f"| dev {m['hint']} |",
        "|---|---|---|---|---|---|",
    ]
    original = next(iter(runs.values()))["history"][0]
    lines.append(
        f"| (original) | – | {original['dev']['afgb']:.4f} | "
        f"{original['dev']['relative_gap']:.4f} | {original['dev']['pronoun_mass']:.4f} | "
        f"{original['dev_ub']:.4f} |"
    )
    for r in runs.values():
        b = r["best"]
        mark = " **chosen**" if r is chosen else ""
        lines.append(
            f"| {r['lr']:g}{mark} | {r['best_epoch']} | {b['dev']['afgb']:.4f} | "
            f"{b['dev']['relative_gap']:.4f} | {b['dev']['pronoun_mass']:.4f} | "
            f"{b['dev_ub']:.4f} |"
        )
    table = "\n".join(lines)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        write_json(tmp / "sweep.json", info)
        (tmp / "sweep.md").write_text(
            f"# Learning-rate sweep on the dev splits: {config.model}, blocks {blocks}\n\n"
            f"{info['produced_by']}, seed {config.seed}, {info['date']}; each run keeps its best "
            f"dev epoch (dev {m['hint']} >= {config.min_ub_ratio:g} x original).\n\n{table}\n\n"
            f"Chosen: `lftf-train finetune {flags}`\n"
        )
        plots.plot_sweep(
            {f"lr {k}": r["history"] for k, r in runs.items()},
            tmp / "sweep.png",
            title=f"{config.model}: blocks {blocks}",
            footer=f"{info['produced_by']}  seed {config.seed}  {info['date']}",
        )
    log("\n" + table + f"\n\nchosen on dev: lftf-train finetune {flags}")
    return info


def _history_keys(axis) -> dict[str, str]:
    """What the history's gender-named keys hold for this axis (they keep one name)."""
    m = axis.metrics
    return {
        "afgb": f"dev {m['bias']}",
        "pronoun_mass": f"dev {m['mass']}",
        "relative_gap": f"dev {m['relative']}",
        "dev_ub": f"dev {m['hint']}",
    }


def _silent(*args, **kwargs) -> None:
    pass
