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
from lftf_train.scoring import pronoun_token_ids
from lftf_train.train import finetune


def locate_blocks(
    model, tokenizer, config: LFTFConfig, seeds: list[int] | None = None, show_progress: bool = True
) -> dict:
    """BMI of every block from both sources on config.locate_prompts sampled prompts."""
    seeds = seeds or [config.seed]
    jobs = [(source, seed) for seed in seeds for source in locate.SOURCES]
    scores = {source: [] for source in locate.SOURCES}
    for source, seed in tqdm(
        jobs, desc="locate (BMI)", disable=None if show_progress else True, leave=False
    ):
        prompts = data.sample_prompts("train", config.locate_prompts, seed)
        scores[source].append(
            locate.bmi_scores(model, tokenizer, prompts, source, config.eval_batch_size)
        )
    report = {
        "model": config.model,
        "n_prompts": config.locate_prompts,
        "prompt_split": "genbiaseval/train",
        "seeds": seeds,
        "bmi_source": config.bmi_source,
        "scores": {s: scores[s][0] for s in locate.SOURCES},
        "ranking": {s: locate.ranking(scores[s][0]) for s in locate.SOURCES},
    }
    report["top_block"] = {s: report["ranking"][s][0] for s in locate.SOURCES}
    if len(seeds) > 1:
        report["scores_per_seed"] = scores
        report["robustness"] = {s: locate.seed_robustness(scores[s]) for s in locate.SOURCES}
    return report


def write_locate_outputs(folder: Path, report: dict, resolved_model: str) -> None:
    info = {**report, "resolved_model": resolved_model, **provenance()}
    write_json(folder / "bmi.json", info)
    plots.plot_bmi(
        report["scores"],
        folder / "bmi.png",
        title=f"BMI per block: {report['model']} ({report['n_prompts']} GenBiasEval-train prompts)",
        footer=f"{info['produced_by']}  seed {report['seeds'][0]}  {info['date']}",
    )


def run_locate(config: LFTFConfig, out_dir: Path, overwrite: bool, seeds=None, log=print) -> dict:
    check_output_dir(out_dir, overwrite)
    model, tokenizer, resolved = models.load(
        config.model, config.dtype, device_map=config.device_map
    )
    report = locate_blocks(model, tokenizer, config, seeds)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        write_locate_outputs(tmp, report, resolved)
        config.save(tmp / "lftf_config.json")
    for source in locate.SOURCES:
        chosen = " (used for --blocks auto)" if source == config.bmi_source else ""
        log(f"{source:>13}: top blocks {report['ranking'][source][:5]}{chosen}")
        if "robustness" in report:
            rob = report["robustness"][source]
            log(f"{'':>13}  mean per-block variance over seeds {seeds}: {rob['mean_variance']:.3e}")
    log(f"wrote {out_dir}/bmi.json and bmi.png")
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
    pronoun_token_ids(tokenizer)  # fail before any work if the pronouns are not single tokens
    report = None
    if config.blocks == "auto":
        report = locate_blocks(model, tokenizer, config)
        log(f"BMI ({config.bmi_source}) top blocks: {report['ranking'][config.bmi_source][:5]}")
    ranking = report["ranking"][config.bmi_source] if report else None
    blocks = resolve_blocks(config.blocks, num_blocks(model), ranking, config.num_blocks)
    log(
        f"training blocks {blocks} ({config.method}, modules {','.join(config.modules)}, "
        f"terms {','.join(config.terms)}, lr {config.lr:g}, {config.epochs} epochs)"
    )

    model_args = lm_eval_model_args(resolved, config)
    before = None
    if evaluate and main:
        log("evaluating the original model with lm-eval (genbiaseval, genhinteval) ...")
        before = run_lm_eval(model_args, limit=eval_limit)

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
        loss="mean over prompts of " + " + ".join(f"-log P({t}|p)" for t in config.terms),
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
            after = run_lm_eval(f"{model_args},peft={tmp}", limit=eval_limit)
            rows = {"original": bias_summary(before), "LFTF": bias_summary(after)}
            table = comparison_table(rows, baseline="original")
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
    pronoun_token_ids(tokenizer)
    report = None
    if config.blocks == "auto":
        report = locate_blocks(model, tokenizer, config)
    ranking = report["ranking"][config.bmi_source] if report else None
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
        runs=runs,
        chosen_lr=chosen["lr"],
        chosen_epochs=chosen["best_epoch"],
        finetune_flags=flags,
        bmi=report,
    )
    lines = [
        "| lr | best epoch | dev AFGB | dev rel. gap | dev P(he)+P(she) | dev UB |",
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
            f"dev epoch (dev UB >= {config.min_ub_ratio:g} x original).\n\n{table}\n\n"
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


def _silent(*args, **kwargs) -> None:
    pass
