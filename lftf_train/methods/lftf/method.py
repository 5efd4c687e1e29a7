"""LFTF's ``apply``: locate (blocks='auto'), wrap the chosen blocks, fine-tune them."""

from __future__ import annotations

from lftf_train import plots
from lftf_train.locating import choose_blocks
from lftf_train.methods.lftf.config import LFTFConfig
from lftf_train.methods.lftf.model import wrap_for_training
from lftf_train.methods.lftf.train import finetune
from lftf_train.records import footer, write_locate_outputs
from lftf_train.registry import Adapted, Context
from lftf_train.scoring import target_token_ids
from lftf_train.tables import span


def apply(model, tokenizer, config: LFTFConfig, context: Context) -> Adapted:
    """Train the chosen blocks of ``model`` (in place) with the LFTF loss."""
    axis, log = config.load_axis(), context.log
    target_token_ids(tokenizer, axis)  # refused before any work if a word is not one token
    blocks, located = choose_blocks(model, tokenizer, config, context.located, log=log)
    log(
        f"training blocks {blocks} ({config.method}, modules {','.join(config.modules)}, "
        f"terms {','.join(config.terms)}, lr {config.lr:g}, {config.epochs} epochs)"
    )
    peft_model = wrap_for_training(model, config, blocks)
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    result = finetune(
        peft_model,
        tokenizer,
        config,
        blocks,
        naive=config.naive,
        log=log,
        accelerator=context.accelerator,
        show_progress=context.show_progress,
        prefix_cache=context.prefix_cache,
    )
    if context.prefix_cache is None:  # later runs in this context start from it
        context.prefix_cache = result.prefix_cache
    details = _details(config, blocks, trainable, result, located, context)

    def training_plot(folder, record):
        plots.plot_history(
            result.history,
            folder / "training.png",
            title=f"LFTF on {config.model}: blocks {blocks}, lr {config.lr:g}",
            axis=axis,
            footer=footer(record, config.seed),
        )

    artifacts = {"training.png": training_plot}
    if located is not None and context.located is None:  # it located: keep what it found
        artifacts["bmi.json"] = lambda folder, _: write_locate_outputs(
            folder, located, context.resolved_model
        )
    return Adapted(
        model=peft_model,
        details=details,
        settings=describe(config, blocks),
        row={
            "trainable_parameters": trainable,
            "seconds_per_epoch": sum(result.seconds_per_epoch) / len(result.seconds_per_epoch),
        },
        artifacts=artifacts,
    )


def _details(config: LFTFConfig, blocks, trainable: int, result, located, context) -> dict:
    """What the run record says about the training."""
    return {
        "blocks": blocks,
        "trainable_parameters": trainable,
        "loss": loss_formula(config),
        "best_epoch": result.best_epoch,
        "history": result.history,
        "seconds_per_epoch": result.seconds_per_epoch,
        "step_losses": result.step_losses,
        "training_path": "naive (full forward per step)" if config.naive else "cached prefix",
        "processes": context.accelerator.num_processes if context.accelerator else 1,
        "bmi": located,
    }


def loss_formula(config: LFTFConfig) -> str:
    """The objective in words, as the record and the report state it."""
    if config.loss == "split":
        groups = " or ".join(config.load_axis().labels)
        terms = " ".join(f"-log P({t}|p, {groups})" for t in config.terms)
        formula = f"mean over prompts of the mean of {terms}"
    else:
        formula = "mean over prompts of " + " ".join(f"-log P({t}|p)" for t in config.terms)
    if config.kl_weight > 0:
        formula += f" + {config.kl_weight:g} KL(original || trained, groups merged)"
    if config.anchor_weight > 0:
        formula += f" + {config.anchor_weight:g} KL(original || trained) on hinted anchor prompts"
    return formula


def describe(config: LFTFConfig, blocks: list[int]) -> str:
    """What a run trained, in a few words: blocks and schedule, and any ablation."""
    trained = "all" if config.blocks == "all" else span(blocks)
    extra = []
    if config.modules != ["attn", "mlp"]:
        extra.append(f"modules {','.join(config.modules)}")
    if config.terms != config.load_axis().labels:
        extra.append(f"terms {','.join(config.terms)}")
    if config.loss != "nll":
        extra.append(f"{config.loss} loss")
    if config.kl_weight > 0:
        extra.append(f"KL {config.kl_weight:g}")
    if config.anchor_weight > 0:
        extra.append(f"anchors {config.anchor_weight:g}")
    return ", ".join([f"blocks {trained}, lr {config.lr:g}, {config.epochs} epoch(s)", *extra])
