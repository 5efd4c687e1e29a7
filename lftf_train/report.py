"""lftf-train report: the paper's comparisons on one model, in one output folder.

Rows (Tables 4, 6 and 8 of the paper): the original model; LFTF with the paper's defaults
and with dev-tuned settings; FPFT (every block, same loss); a prompt-based baseline (PB: an
instruction before every prompt, through lm-eval's ``system_instruction``); the ablations
w/o ATT, w/o MLP, w/o he, w/o she. Every row is scored by lm-eval's own tasks; trained rows
are evaluated from their saved adapter with ``peft=``, exactly as a user would. The
markdown's prose is the template ``templates/report.md.j2``.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import json
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import jinja2

from lftf_tasks.axis import Axis
from lftf_tasks.outputs import atomic_output_dir, check_output_dir, provenance, write_json
from lftf_train import capability, models, plots
from lftf_train.adapters import wrap_for_training
from lftf_train.blocks import num_blocks
from lftf_train.config import LFTFConfig
from lftf_train.editors.config import DAMA_RANKS, DAMAConfig, EditConfig
from lftf_train.editors.dama import span
from lftf_train.evaluate import (
    SLOPE_COLUMNS,
    bias_summary,
    general_metrics,
    lm_eval_model_args,
    run_lm_eval,
    summary_columns,
)
from lftf_train.export import save_adapter
from lftf_train.locate import blocks_from, locate_blocks
from lftf_train.pipeline import (
    apply_dama,
    apply_edits,
    footer,
    write_dama_outputs,
    write_locate_outputs,
)
from lftf_train.prefix import PrefixCache
from lftf_train.scoring import score_prompts, target_token_ids
from lftf_train.tables import comparison_table, markdown_table
from lftf_train.train import finetune

TEMPLATE = Path(__file__).parent / "templates" / "report.md.j2"
PB_INSTRUCTION = (
    "Treat all genders equally. Do not assume the gender of a person from their profession."
)
CASE_STUDY = ("mobster", "nurse", "preacher", "caretaker", "footballer")
NOT_RUN = {
    "MEND": "not run: MEND edits through a hypernetwork trained on an editing dataset (ZsRE) for "
    "each model; neither the dataset nor a trained MEND for this model is available offline",
}
EDITOR_ROWS = {"ROME": "rome", "R-ROME": "r-rome", "MEMIT": "memit"}
CAPABILITY = [
    ("next_token_agreement", "next-token agreement ↑"),
    ("kl", "KL ↓"),
    ("neutral_ppl", "neutral PPL ↓"),
]
GENERAL_SUFFIXES = ("_acc", "_acc_norm", "_exact_match")


@dataclass
class ReportSettings:
    """What the report runs besides the base LFTFConfig (model, seed, dtype, BMI source)."""

    tuned_lr: float = 1e-4  # chosen on the dev splits by `lftf-train sweep` for SmolLM2
    tuned_epochs: int = 7
    fpft_lr: float | None = None  # None: the tuned learning rate
    fpft_epochs: int = 1
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    general_tasks: list[str] = field(default_factory=list)
    include_path: list[str] | None = None  # a user's lm-eval task folders
    limit: int | None = None
    pb_instruction: str = PB_INSTRUCTION
    save_adapters: bool = False
    dama_layers: str = "auto"  # DAMAConfig.layers: 19-27 for SmolLM2
    dama_ranks: list[int] = field(default_factory=lambda: list(DAMA_RANKS))
    edit_limit: int = 6  # sequential edits per editor row (all 943: lftf-train edit)
    rows: list[str] | None = None  # None: every row; "Original" always runs


def slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "_", name.lower()).strip("_")


def method_rows(base: LFTFConfig, s: ReportSettings, blocks: list[int]) -> list[tuple]:
    """(name, kind, config or None) for every row; trained rows use block list ``blocks``."""
    paper = dataclasses.replace(base, blocks=blocks, lr=1e-5, epochs=2, select="last")
    tuned = dataclasses.replace(paper, lr=s.tuned_lr, epochs=s.tuned_epochs)
    fpft = dataclasses.replace(
        tuned, blocks="all", lr=s.fpft_lr or s.tuned_lr, epochs=s.fpft_epochs
    )
    return [
        ("Original", "original", None),
        ("LFTF (paper defaults)", "trained", paper),
        ("LFTF (dev-tuned)", "trained", tuned),
        ("FPFT", "trained", fpft),
        ("PB", "prompt", None),
        ("DAMA", "dama", dama_config(base, s)),
        *[(name, "edit", edit_config(base, s, editor)) for name, editor in EDITOR_ROWS.items()],
        *[(name, "not_run", None) for name in NOT_RUN],
        ("w/o ATT", "trained", dataclasses.replace(tuned, modules=["mlp"])),
        ("w/o MLP", "trained", dataclasses.replace(tuned, modules=["attn"])),
        ("w/o he", "trained", dataclasses.replace(tuned, terms=["she"])),
        ("w/o she", "trained", dataclasses.replace(tuned, terms=["he"])),
    ]


def dama_config(base: LFTFConfig, s: ReportSettings) -> DAMAConfig:
    """DAMA on the report's model with the report's seed and precision."""
    shared = {f: getattr(base, f) for f in ("model", "axis", "seed", "dtype", "eval_batch_size")}
    return DAMAConfig(**shared, layers=s.dama_layers, ranks=s.dama_ranks)


def edit_config(base: LFTFConfig, s: ReportSettings, editor: str) -> EditConfig:
    """A knowledge editor on the report's model: ``s.edit_limit`` sequential edits."""
    shared = {f: getattr(base, f) for f in ("model", "axis", "seed", "dtype", "eval_batch_size")}
    return EditConfig(**shared, editor=editor, limit=s.edit_limit)


def case_study_prompts(axis: Axis) -> dict[str, list[str]]:
    """Every bias template of the axis filled with each case-study profession."""
    templates = [t for group in axis.templates.values() for t in group]
    return {p: [t.format(subject=p) for t in templates] for p in CASE_STUDY}


def per_profession_gap(samples: dict, axis: Axis) -> dict[str, float]:
    """Mean signed gap per subject over lm-eval's logged samples of the bias test tasks."""
    gaps = defaultdict(list)
    for task, rows in samples.items():
        if task.startswith(f"{axis.bias_task}_"):
            for s in rows:
                gaps[s["doc"][axis.subject_field]].append(s["gap"])
    return {p: sum(v) / len(v) for p, v in gaps.items()}


def _prompt_prefix(samples: dict, axis: Axis) -> str:
    """The text lm-eval put before the prompt (the PB instruction and its delimiter)."""
    s = samples[axis.hint_task][0]
    context, prompt = s["arguments"][0][0], s["doc"]["prompt"]  # (context, " he") request
    return context[: context.rindex(prompt)]


@dataclass
class _Rows:
    """What every row shares: the base model, how lm-eval loads it, and the references."""

    config: LFTFConfig
    settings: ReportSettings
    axis: Axis
    base: object
    tokenizer: object
    base_args: str
    located: dict
    cache: PrefixCache
    reference: object  # next-token log-distributions of the original on neutral prompts


def _train_row(rows: _Rows, row_config: LFTFConfig, folder: Path, log) -> tuple:
    """Fine-tune a copy of the base model, save its adapter: (model, model_args, row)."""
    blocks = blocks_from(row_config, num_blocks(rows.base), rows.located)
    model = wrap_for_training(copy.deepcopy(rows.base), row_config, blocks)
    result = finetune(model, rows.tokenizer, row_config, blocks, log=log, prefix_cache=rows.cache)
    run_info = provenance(
        model=rows.config.model,
        lm_eval_model_args=rows.base_args,
        blocks=blocks,
        config=row_config.to_dict(),
        metrics=rows.axis.metrics,
        history=result.history,
        best_epoch=result.best_epoch,
        seconds_per_epoch=result.seconds_per_epoch,
    )
    save_adapter(model, rows.tokenizer, folder / "adapter", row_config, run_info)
    write_json(folder / "lftf_run.json", run_info)
    row = {
        "config": row_config.to_dict(),
        "trainable_parameters": sum(p.numel() for p in model.parameters() if p.requires_grad),
        "seconds_per_epoch": sum(result.seconds_per_epoch) / len(result.seconds_per_epoch),
    }
    return model, f"{rows.base_args},peft={folder / 'adapter'}", row


def _dama_row(rows: _Rows, config: DAMAConfig, folder: Path, log) -> tuple:
    """DAMA on a copy of the base model, saved like `lftf-train dama`: (model, model_args,
    row). The row states the blocks and rank it edited."""
    start = time.perf_counter()
    adapter = folder / "adapter"
    model = copy.deepcopy(rows.base)
    resolved = rows.base_args.split(",")[0].removeprefix("pretrained=")
    info, model = apply_dama(model, rows.tokenizer, resolved, config, adapter, log=log)
    write_dama_outputs(adapter, model, rows.tokenizer, config, info)
    for name in ("dama.json", "dama_sweep.md", "dama_sweep.png"):
        shutil.copy(adapter / name, folder / name)
    chosen = info["chosen"]
    row = {
        "config": config.to_dict(),
        "layers": chosen["layers"],
        "rank": chosen["rank"],
        "label": f"DAMA (blocks {span(chosen['layers'])}, k {chosen['rank']})",
        "seconds": round(time.perf_counter() - start, 1),
    }
    return model, f"{rows.base_args},peft={adapter}", row


def _edit_row(rows: _Rows, config: EditConfig, folder: Path, log) -> tuple:
    """A knowledge editor on a copy of the base model, saved like `lftf-train edit`."""
    start = time.perf_counter()
    adapter = folder / "adapter"
    model = copy.deepcopy(rows.base)
    resolved = rows.base_args.split(",")[0].removeprefix("pretrained=")
    info, model = apply_edits(model, rows.tokenizer, resolved, config, adapter, log=log)
    save_adapter(model, rows.tokenizer, adapter, config, info, ("edit_config.json", "edits.json"))
    shutil.copy(adapter / "edits.json", folder / "edits.json")
    name = {v: k for k, v in EDITOR_ROWS.items()}[config.editor]
    row = {
        "config": config.to_dict(),
        "layers": info["blocks"],
        "edits": info["summary"]["edits"],
        "efficacy": info["summary"]["success_rate"],
        "label": f"{name} ({info['summary']['edits']} edits, block(s) {span(info['blocks'])})",
        "seconds": round(time.perf_counter() - start, 1),
    }
    return model, f"{rows.base_args},peft={adapter}", row


def _score_row(rows: _Rows, model, model_args: str, instruction, folder: Path) -> tuple:
    """lm-eval on the bias, hint and general tasks, capability kept, the case study and
    per-profession gaps: (row scores, case study, gaps)."""
    axis, tokenizer = rows.axis, rows.tokenizer
    tasks = [axis.bias_task, axis.hint_task, *rows.settings.general_tasks]
    results = run_lm_eval(
        model_args,
        tasks=tasks,
        limit=rows.settings.limit,
        system_instruction=instruction,
        log_samples=True,
        include_path=rows.settings.include_path,
    )
    write_json(
        folder / "lm_eval_results.json",
        {
            "model_args": model_args,
            "system_instruction": instruction,
            "results": results["results"],
            "n-samples": results["n-samples"],
            "versions": results.get("versions"),
        },
    )
    prefix = _prompt_prefix(results["samples"], axis) if instruction else ""
    scores = {
        **bias_summary(results, axis),
        **general_metrics(results, rows.settings.general_tasks),
    }
    neutral = capability.neutral_prompts()
    logp = capability.next_token_logprobs(model, tokenizer, neutral, prefix=prefix)
    scores.update(capability.agreement_and_kl(rows.reference, logp))
    scores["neutral_ppl"] = capability.perplexity(
        model, tokenizer, capability.neutral_text(), context=prefix
    )
    case = {
        p: tuple(
            score_prompts(model, tokenizer, [prefix + q for q in qs], axis=axis)
            .exp()
            .mean(0)
            .tolist()
        )
        for p, qs in case_study_prompts(axis).items()
    }
    return scores, case, per_profession_gap(results["samples"], axis)


def run_report(
    config: LFTFConfig, settings: ReportSettings, out_dir: Path, overwrite: bool, log=print
) -> dict:
    check_output_dir(out_dir, overwrite)
    axis = config.load_axis()
    base, tokenizer, resolved = models.load(
        config.model, config.dtype, device_map=config.device_map
    )
    target_token_ids(tokenizer, axis)
    info = provenance(
        model=config.model,
        resolved_model=resolved,
        seed=config.seed,
        settings=dataclasses.asdict(settings),
        base_config=config.to_dict(),
        metrics=axis.metrics,
    )
    start = time.perf_counter()
    with atomic_output_dir(out_dir, overwrite) as tmp:
        log(f"locating: BMI of every block, seeds {settings.seeds}")
        seeded = dataclasses.replace(config, seed=settings.seeds[0])
        located = locate_blocks(base, tokenizer, seeded, seeds=settings.seeds)
        write_locate_outputs(tmp, located, resolved)
        blocks = blocks_from(dataclasses.replace(config, blocks="auto"), num_blocks(base), located)
        shared = _Rows(
            config=config,
            settings=settings,
            axis=axis,
            base=base,
            tokenizer=tokenizer,
            base_args=lm_eval_model_args(resolved, config),
            located=located,
            cache=PrefixCache.build(base, tokenizer, min(blocks), axis, config.eval_batch_size),
            reference=capability.next_token_logprobs(base, tokenizer, capability.neutral_prompts()),
        )
        rows, case, gaps = {}, {}, {}
        plan = method_rows(config, settings, blocks)
        for i, (name, kind, row_config) in enumerate(plan, start=1):
            if kind == "not_run":
                rows[name] = {"status": NOT_RUN[name]}
                continue
            if settings.rows is not None and name not in settings.rows and name != "Original":
                continue
            log(f"[{i}/{len(plan)}] {name}  ({time.perf_counter() - start:.0f} s so far)")
            folder = tmp / "rows" / slug(name)
            folder.mkdir(parents=True)
            model, model_args, instruction, row = base, shared.base_args, None, {"status": "ok"}
            if kind == "prompt":
                instruction = row["instruction"] = settings.pb_instruction
            if kind == "trained":
                model, model_args, trained = _train_row(shared, row_config, folder, log)
                row.update(trained)
            if kind == "dama":
                model, model_args, edited = _dama_row(shared, row_config, folder, log)
                row.update(edited)
            if kind == "edit":
                model, model_args, edited = _edit_row(shared, row_config, folder, log)
                row.update(edited)
            log(f"[{i}/{len(plan)}] {name}: lm-eval  ({time.perf_counter() - start:.0f} s so far)")
            scores, case[name], gaps[name] = _score_row(
                shared, model, model_args, instruction, folder
            )
            rows[name] = {**row, **scores}
            if kind in ("trained", "dama", "edit") and not settings.save_adapters:
                shutil.rmtree(folder / "adapter")
            del model
        info.update(blocks=blocks, rows=rows, case_study=case, bmi=located)
        _write_report_files(tmp, info, settings, axis, case, gaps)
    log(f"wrote {out_dir}/report.md, results.csv and figures")
    return info


def _write_report_files(folder: Path, info, settings, axis, case, gaps) -> None:
    write_json(folder / "report.json", info)
    write_csv(folder / "results.csv", info["rows"], info, axis)
    note = footer(info, info["seed"])
    tuned = "LFTF (dev-tuned)"
    plots.plot_case_study(
        {k: case[k] for k in ("Original", tuned) if k in case},
        folder / "case_study.png",
        title=f"Case study: {info['model']}",
        labels=axis.labels,
        footer=note,
    )
    edits = {
        name: json.loads((folder / "rows" / slug(name) / "edits.json").read_text())["edits"]
        for name in EDITOR_ROWS
        if info["rows"].get(name, {}).get("status") == "ok"
    }
    if edits:
        plots.plot_edit_trajectory(
            edits, folder / "edits.png", title=f"Sequential edits: {info['model']}", footer=note
        )
    if tuned not in gaps:  # a report of some rows only
        return (folder / "report.md").write_text(render_markdown(info, settings, axis))
    plots.plot_per_profession(
        gaps["Original"],
        gaps[tuned],
        folder / "per_profession.png",
        title=f"Bias per profession: {info['model']}",
        after_label=tuned,
        labels=axis.labels,
        footer=note,
    )
    (folder / "report.md").write_text(render_markdown(info, settings, axis))


def _general_keys(rows: dict[str, dict]) -> list[str]:
    return sorted({k for r in rows.values() for k in r if k.endswith(GENERAL_SUFFIXES)})


def csv_metrics(rows: dict[str, dict], axis: Axis) -> tuple[list[str], list[str]]:
    """(metric columns, stderr columns) of results.csv."""
    keys = [key for key, _ in summary_columns(axis)]
    slopes = [key for key, _ in SLOPE_COLUMNS] if axis.slopes else []
    metrics = keys + slopes + [key for key, _ in CAPABILITY] + _general_keys(rows)
    stderr = [f"{k}_stderr" for k in keys if any(f"{k}_stderr" in r for r in rows.values())]
    return metrics, stderr


def write_csv(path: Path, rows: dict[str, dict], info: dict, axis: Axis) -> None:
    metrics, stderr = csv_metrics(rows, axis)
    original = rows["Original"]
    header = [
        "method",
        "status",
        "settings",
        *metrics,
        *stderr,
        *[f"delta_{m}" for m in metrics],
        "model",
        "seed",
        "produced_by",
        "date",
    ]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        for name, row in rows.items():
            values = [row.get(m, "") for m in metrics + stderr]
            deltas = [row[m] - original[m] if m in row and m in original else "" for m in metrics]
            provenance_ = [info["model"], info["seed"], info["produced_by"], info["date"]]
            writer.writerow([name, row["status"], settings(row), *values, *deltas, *provenance_])


def settings(row: dict) -> str:
    """What a row ran, in a few words: blocks and schedule, or blocks and rank."""
    config = row.get("config")
    if not config:
        return row.get("instruction", "")
    if "ranks" in config:
        return f"blocks {span(row['layers'])}, rank {row['rank']}"
    if "editor" in config:
        return f"{row['edits']} sequential edits, blocks {span(row['layers'])}"
    blocks = config["blocks"]
    blocks = "all" if blocks == "all" else span(blocks)
    extra = []
    if config["modules"] != ["attn", "mlp"]:
        extra.append(f"modules {','.join(config['modules'])}")
    if config["terms"] != ["he", "she"]:
        extra.append(f"terms {','.join(config['terms'])}")
    return ", ".join([f"blocks {blocks}, lr {config['lr']:g}, {config['epochs']} epoch(s)", *extra])


def _cost_table(rows: dict) -> str:
    lines = [
        [name, f"{row['trainable_parameters']:,}", f"{row['seconds_per_epoch']:.1f}"]
        for name, row in rows.items()
        if "trainable_parameters" in row
    ]
    return markdown_table(["method", "trained parameters", "seconds per epoch"], lines)


def _robustness_table(bmi: dict) -> str:
    if "robustness" not in bmi:
        return ""
    lines = [
        [source, f"{rob['mean_variance']:.3e}", ", ".join(map(str, rob["top_block_per_seed"]))]
        for source, rob in bmi["robustness"].items()
    ]
    return markdown_table(["BMI source", "mean per-block variance", "top block per seed"], lines)


def render_markdown(info: dict, settings: ReportSettings, axis: Axis) -> str:
    rows = info["rows"]
    bias_cols = summary_columns(axis)
    general_cols = CAPABILITY + [(g, g) for g in _general_keys(rows)]
    main = ["Original", "LFTF (paper defaults)", "LFTF (dev-tuned)", "FPFT", "PB", "DAMA"]
    main += [*EDITOR_ROWS, *NOT_RUN]
    ablations = ["LFTF (dev-tuned)", "w/o ATT", "w/o MLP", "w/o he", "w/o she"]

    def table(names, columns):
        chosen = {rows[n].get("label", n): rows[n] for n in names if n in rows}
        original = rows["Original"].get("label", "Original")
        return comparison_table(chosen, columns, baseline=original, corner="method")

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    template = env.from_string(TEMPLATE.read_text(encoding="utf-8"))
    return template.render(
        info=info,
        settings=settings,
        axis=axis,
        loss="-" + " - ".join(f"log P({t}|p)" for t in axis.labels),
        tuned=rows.get("LFTF (dev-tuned)", {}).get("config", {"lr": "–", "epochs": "–"}),
        fpft=rows.get("FPFT", {}).get("config", {"lr": "–", "epochs": "–"}),
        main_table=table(main, bias_cols),
        not_run={k: v.removeprefix("not run: ") for k, v in NOT_RUN.items()},
        n_neutral=len(capability.neutral_prompts()),
        capability_table=table(main, general_cols),
        ablation_table=table(ablations, bias_cols + CAPABILITY),
        slope_table=table(main, SLOPE_COLUMNS) if axis.slopes else "",
        dama=rows.get("DAMA", {}),
        editors={n: rows[n] for n in EDITOR_ROWS if rows.get(n, {}).get("status") == "ok"},
        dama_blocks=span(rows["DAMA"]["layers"]) if "layers" in rows.get("DAMA", {}) else "",
        cost_table=_cost_table(rows),
        bmi=info["bmi"],
        robustness_table=_robustness_table(info["bmi"]),
        n_templates=sum(len(t) for t in axis.templates.values()),
        case_study=CASE_STUDY,
    )
