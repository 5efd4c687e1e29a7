"""DAMA's ``apply``: value vectors, the dev sweep over layer sets and ranks, the chosen
projections applied; the edited down-projections become a PEFT adapter."""

from __future__ import annotations

from lftf_train.adapters import wrap_edited
from lftf_train.editing import corpus, mlp_out_name, read_corpus, second_moments
from lftf_train.methods.dama import dama, plots
from lftf_train.methods.dama.config import DAMAConfig
from lftf_train.records import footer
from lftf_train.registry import Adapted, Context
from lftf_train.tables import cell, markdown_table, span


def apply(model, tokenizer, config: DAMAConfig, context: Context) -> Adapted:
    """Run DAMA on ``model`` in place."""
    moments = None
    if config.whitening:
        texts = (
            read_corpus(config.cov_text)
            if config.cov_text
            else corpus(model, tokenizer, context.resolved_model, config.seed, config.cov_tokens)
        )
        moments = lambda layers: second_moments(model, tokenizer, texts, layers)  # noqa: E731
    result = dama.run_dama(model, tokenizer, config, log=context.log, moments_fn=moments)
    chosen = result["chosen"]
    names = [mlp_out_name(model, layer) for layer in chosen["layers"]]
    blocks = span(chosen["layers"])
    return Adapted(
        model=wrap_edited(model, names),
        details={"edited_modules": names, **result},
        settings=f"blocks {blocks}, rank {chosen['rank']}",
        label=f"DAMA (blocks {blocks}, k {chosen['rank']})",
        summary=f"DAMA: blocks {blocks}, rank {chosen['rank']} (chosen on dev)",
        row={"layers": chosen["layers"], "rank": chosen["rank"]},
        artifacts={"dama_sweep.md": lambda folder, record: write_sweep(folder, config, record)},
    )


def write_sweep(folder, config: DAMAConfig, record: dict) -> None:
    """dama_sweep.md and dama_sweep.png: the dev sweep, the chosen setting marked."""
    axis, info = config.load_axis(), record["result"]
    chosen = info["chosen"]
    (folder / "dama_sweep.md").write_text(
        f"# DAMA on {config.model}: the dev sweep\n\n{record['produced_by']}, seed "
        f"{config.seed}, {record['date']}; {info['requests']} requests, targets "
        f"{', '.join(config.targets)}. Chosen: blocks {span(chosen['layers'])}, rank "
        f"{chosen['rank']} (the lowest |dev a_s_relative| among settings whose dev "
        f"{axis.metrics['hint']} keeps {config.min_ub_ratio:g} x the original's).\n\n"
        f"{sweep_table(info, axis)}\n"
    )
    plots.plot_dama_sweep(
        info["sweep"],
        info["original_dev"],
        folder / "dama_sweep.png",
        title=f"DAMA on {config.model}: dev splits",
        axis=axis,
        footer=footer(record, config.seed),
    )


def sweep_table(info: dict, axis) -> str:
    """The dev sweep, one line per (layer set, rank), after the original model's line."""
    m = axis.metrics
    keys = ["a_s", "a_s_relative", "a_f", m["bias"], m["relative"], m["mass"], m["hint"]]
    chosen = info["chosen"]
    lines = [["(original)", "–", *[cell(info["original_dev"], k) for k in keys], "–"]]
    for e in info["sweep"]:
        mark = (
            " **chosen**" if (e["layers"], e["rank"]) == (chosen["layers"], chosen["rank"]) else ""
        )
        lines.append(
            [
                f"{span(e['layers'])}{mark}",
                e["rank"],
                *[cell(e["dev"], k) for k in keys],
                e["seconds"],
            ]
        )
    header = ["blocks", "rank", *[f"dev {k}" for k in keys], "seconds"]
    return markdown_table(header, lines)
