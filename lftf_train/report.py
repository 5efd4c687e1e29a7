"""lftf-train report: the paper's comparisons on one model, in one output folder.

Rows (Tables 4, 6 and 8 of the paper): the original model; LFTF with the paper's defaults
and with dev-tuned settings; FPFT (every block, same loss); a prompt-based baseline (PB: an
instruction before every prompt, through lm-eval's ``system_instruction``); the ablations
w/o ATT, w/o MLP, w/o he, w/o she. Every row is scored by lm-eval's own tasks; trained rows
are evaluated from their saved adapter with ``peft=``, exactly as a user would.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import re
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lftf_tasks.axis import load_axis
from lftf_train import capability, models, plots
from lftf_train.adapters import wrap_for_training
from lftf_train.blocks import num_blocks, resolve_blocks
from lftf_train.config import LFTFConfig
from lftf_train.evaluate import BIAS_TASKS, bias_summary, lm_eval_model_args, run_lm_eval
from lftf_train.export import save_adapter
from lftf_train.outputs import atomic_output_dir, check_output_dir, provenance, write_json
from lftf_train.pipeline import locate_blocks, ranking_key, write_locate_outputs
from lftf_train.scoring import score_prompts, target_token_ids
from lftf_train.train import build_prefix_cache, finetune

PB_INSTRUCTION = (
    "Treat all genders equally. Do not assume the gender of a person from their profession."
)
CASE_STUDY = ("mobster", "nurse", "preacher", "caretaker", "footballer")
NOT_RUN = {
    "DAMA": "not run: DAMA (projection-based editing of MLP weights) is not implemented in lftf yet",
    "ROME/MEMIT": "not run: ROME/MEMIT-style editing is not implemented in lftf yet",
}


@dataclass
class ReportSettings:
    """What the report runs besides the base LFTFConfig (model, seed, dtype, BMI source)."""

    tuned_lr: float = 1e-4  # chosen on the dev splits by `lftf-train sweep` for SmolLM2
    tuned_epochs: int = 7
    fpft_lr: float | None = None  # None: the tuned learning rate
    fpft_epochs: int = 1
    seeds: list[int] = field(default_factory=lambda: [1, 2, 3, 4, 5])
    general_tasks: list[str] = field(default_factory=list)
    limit: int | None = None
    pb_instruction: str = PB_INSTRUCTION
    save_adapters: bool = False


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
        *[(name, "not_run", None) for name in NOT_RUN],
        ("w/o ATT", "trained", dataclasses.replace(tuned, modules=["mlp"])),
        ("w/o MLP", "trained", dataclasses.replace(tuned, modules=["attn"])),
        ("w/o he", "trained", dataclasses.replace(tuned, terms=["she"])),
        ("w/o she", "trained", dataclasses.replace(tuned, terms=["he"])),
    ]


def case_study_prompts() -> dict[str, list[str]]:
    """The nine GenBiasEval templates filled with each case-study profession."""
    templates = [t for group in load_axis("gender").templates.values() for t in group]
    return {p: [t.format(subject=p) for t in templates] for p in CASE_STUDY}


def per_profession_gap(samples: dict) -> dict[str, float]:
    """Mean signed gap per profession over lm-eval's logged GenBiasEval-test samples."""
    gaps = defaultdict(list)
    for task, rows in samples.items():
        if task.startswith("genbiaseval_"):
            for s in rows:
                gaps[s["doc"]["profession"]].append(s["gap"])
    return {p: sum(v) / len(v) for p, v in gaps.items()}


def _general_metrics(results: dict, tasks: list[str]) -> dict[str, float]:
    out = {}
    for task in tasks:
        metrics = results["results"].get(task, {})
        for key in ("acc,none", "acc_norm,none", "exact_match,strict-match", "exact_match,none"):
            if key in metrics:
                out[f"{task}_{key.split(',')[0]}"] = metrics[key]
                break
    return out


def _prompt_prefix(samples: dict) -> str:
    """The text lm-eval put before the prompt (the PB instruction and its delimiter)."""
    s = samples["genhinteval"][0]
    context, prompt = s["arguments"][0][0], s["doc"]["prompt"]  # (context, " he") request
    return context[: context.rindex(prompt)]


def run_report(
    config: LFTFConfig, settings: ReportSettings, out_dir: Path, overwrite: bool, log=print
) -> dict:
    check_output_dir(out_dir, overwrite)
    base, tokenizer, resolved = models.load(
        config.model, config.dtype, device_map=config.device_map
    )
    target_token_ids(tokenizer)
    base_args = lm_eval_model_args(resolved, config)
    tasks = [*BIAS_TASKS, *settings.general_tasks]
    info = provenance(
        model=config.model,
        resolved_model=resolved,
        seed=config.seed,
        settings=dataclasses.asdict(settings),
        base_config=config.to_dict(),
    )

    start = time.perf_counter()
    with atomic_output_dir(out_dir, overwrite) as tmp:
        log(f"locating: BMI of every block, seeds {settings.seeds}")
        located = locate_blocks(
            base,
            tokenizer,
            dataclasses.replace(config, seed=settings.seeds[0]),
            seeds=settings.seeds,
        )
        write_locate_outputs(tmp, located, resolved)
        ranking = located["ranking"][ranking_key(config)]
        blocks = resolve_blocks("auto", num_blocks(base), ranking, config.num_blocks)
        reference = capability.next_token_logprobs(base, tokenizer, capability.neutral_prompts())
        cache = build_prefix_cache(base, tokenizer, min(blocks), config.eval_batch_size)
        case_prompts = case_study_prompts()
        rows, case, gaps = {}, {}, {}
        plan = method_rows(config, settings, blocks)
        for i, (name, kind, row_config) in enumerate(plan, start=1):
            if kind == "not_run":
                rows[name] = {"status": NOT_RUN[name]}
                continue
            log(f"[{i}/{len(plan)}] {name}  ({time.perf_counter() - start:.0f} s so far)")
            folder = tmp / "rows" / slug(name)
            folder.mkdir(parents=True)
            model, model_args, instruction, row = base, base_args, None, {"status": "ok"}
            if kind == "prompt":
                instruction = settings.pb_instruction
                row["instruction"] = instruction
            if kind == "trained":
                row_blocks = resolve_blocks(row_config.blocks, num_blocks(base), ranking)
                model = wrap_for_training(copy.deepcopy(base), row_config, row_blocks)
                result = finetune(
                    model, tokenizer, row_config, row_blocks, log=log, prefix_cache=cache
                )
                run_info = provenance(
                    model=config.model,
                    resolved_model=resolved,
                    blocks=row_blocks,
                    config=row_config.to_dict(),
                    history=result.history,
                    best_epoch=result.best_epoch,
                    seconds_per_epoch=result.seconds_per_epoch,
                )
                save_adapter(model, tokenizer, folder / "adapter", row_config, run_info)
                write_json(folder / "lftf_run.json", run_info)
                model_args = f"{base_args},peft={folder / 'adapter'}"
                row["config"] = row_config.to_dict()
                row["trainable_parameters"] = sum(
                    p.numel() for p in model.parameters() if p.requires_grad
                )
                row["seconds_per_epoch"] = sum(result.seconds_per_epoch) / len(
                    result.seconds_per_epoch
                )
            log(
                f"[{i}/{len(plan)}] {name}: lm-eval {','.join(tasks)}  "
                f"({time.perf_counter() - start:.0f} s so far)"
            )
            results = run_lm_eval(
                model_args,
                tasks=tasks,
                limit=settings.limit,
                system_instruction=instruction,
                log_samples=True,
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
            prefix = _prompt_prefix(results["samples"]) if instruction else ""
            row.update(bias_summary(results))
            row.update(_general_metrics(results, settings.general_tasks))
            logp = capability.next_token_logprobs(
                model, tokenizer, capability.neutral_prompts(), prefix=prefix
            )
            row.update(capability.agreement_and_kl(reference, logp))
            row["neutral_ppl"] = capability.perplexity(
                model, tokenizer, capability.neutral_text(), context=prefix
            )
            gaps[name] = per_profession_gap(results["samples"])
            case[name] = {
                p: tuple(
                    score_prompts(model, tokenizer, [prefix + q for q in qs]).exp().mean(0).tolist()
                )
                for p, qs in case_prompts.items()
            }
            rows[name] = row
            if kind == "trained" and not settings.save_adapters:
                shutil.rmtree(folder / "adapter")
            del model
        info.update(blocks=blocks, rows=rows, case_study=case, bmi=located)
        write_json(tmp / "report.json", info)
        write_csv(tmp / "results.csv", rows, info)
        footer = f"{info['produced_by']}  {config.model}  seed {config.seed}  {info['date']}"
        plots.plot_case_study(
            {k: case[k] for k in ("Original", "LFTF (dev-tuned)") if k in case},
            tmp / "case_study.png",
            title=f"Case study: {config.model}",
            footer=footer,
        )
        plots.plot_per_profession(
            gaps["Original"],
            gaps["LFTF (dev-tuned)"],
            tmp / "per_profession.png",
            title=f"Bias per profession: {config.model}",
            after_label="LFTF (dev-tuned)",
            footer=footer,
        )
        (tmp / "report.md").write_text(render_markdown(info, settings))
    log(f"wrote {out_dir}/report.md, results.csv and figures")
    return info


CSV_METRICS = [
    "afgb_word",
    "afgb_phrase",
    "afgb_sentence",
    "afgb_avg",
    "ub",
    "pronoun_mass",
    "relative_gap",
    "next_token_agreement",
    "kl",
    "neutral_ppl",
]


def write_csv(path: Path, rows: dict[str, dict], info: dict) -> None:
    general = sorted(
        {k for r in rows.values() for k in r if k.endswith(("_acc", "_acc_norm", "_exact_match"))}
    )
    metrics = CSV_METRICS + general
    stderr = [
        f"{m}_stderr" for m in ("afgb_word", "afgb_phrase", "afgb_sentence", "afgb_avg", "ub")
    ]
    original = rows["Original"]
    header = [
        "method",
        "status",
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
            writer.writerow(
                [
                    name,
                    "ok" if row["status"] == "ok" else row["status"],
                    *values,
                    *deltas,
                    info["model"],
                    info["seed"],
                    info["produced_by"],
                    info["date"],
                ]
            )


def _cell(row: dict, original: dict, key: str, digits: int = 4, delta: bool = True) -> str:
    if key not in row:
        return "–"
    text = f"{row[key]:.{digits}f}"
    if f"{key}_stderr" in row:
        text += f" ± {row[f'{key}_stderr']:.{digits}f}"
    if delta and row is not original and key in original:
        text += f" ({row[key] - original[key]:+.{digits}f})"
    return text


def _table(rows: dict, names: list[str], columns: list[tuple[str, str]]) -> str:
    original = rows["Original"]
    lines = [
        "| method | " + " | ".join(label for _, label in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name in names:
        row = rows[name]
        if row["status"] != "ok":
            lines.append(f"| {name} | " + " | ".join("–" for _ in columns) + " |")
            continue
        lines.append(
            f"| {name} | " + " | ".join(_cell(row, original, k) for k, _ in columns) + " |"
        )
    return "\n".join(lines)


def _cost_table(rows: dict) -> str:
    lines = ["| method | trained parameters | seconds per epoch |", "|---|---|---|"]
    for name, row in rows.items():
        if "trainable_parameters" in row:
            lines.append(
                f"| {name} | {row['trainable_parameters']:,} | {row['seconds_per_epoch']:.1f} |"
            )
    return "\n".join(lines)


def render_markdown(info: dict, settings: ReportSettings) -> str:
    rows = info["rows"]
    general = sorted(
        {k for r in rows.values() for k in r if k.endswith(("_acc", "_acc_norm", "_exact_match"))}
    )
    bias_cols = [
        ("afgb_word", "AFGB word ↓"),
        ("afgb_phrase", "AFGB phrase ↓"),
        ("afgb_sentence", "AFGB sentence ↓"),
        ("afgb_avg", "AFGB avg. ↓"),
        ("ub", "UB ↑"),
    ]
    general_cols = [
        ("next_token_agreement", "next-token agreement ↑"),
        ("kl", "KL ↓"),
        ("neutral_ppl", "neutral PPL ↓"),
    ] + [(g, g) for g in general]
    view_cols = [("pronoun_mass", "P(he)+P(she)"), ("relative_gap", "relative gap ↓")]
    main = ["Original", "LFTF (paper defaults)", "LFTF (dev-tuned)", "FPFT", "PB", *NOT_RUN]
    ablations = ["LFTF (dev-tuned)", "w/o ATT", "w/o MLP", "w/o he", "w/o she"]
    bmi = info["bmi"]
    robustness = ""
    if "robustness" in bmi:
        lines = ["| BMI source | mean per-block variance | top block per seed |", "|---|---|---|"]
        for source, rob in bmi["robustness"].items():
            lines.append(
                f"| {source} | {rob['mean_variance']:.3e} | "
                f"{', '.join(map(str, rob['top_block_per_seed']))} |"
            )
        robustness = "\n".join(lines)
    not_run = "\n".join(f"- **{k}**: {v.removeprefix('not run: ')}." for k, v in NOT_RUN.items())
    tuned = next((r["config"] for n, r in rows.items() if n == "LFTF (dev-tuned)"), {})
    fpft = rows.get("FPFT", {}).get("config", {})
    limit = (
        f"\n> **Shortened run**: lm-eval `--limit {settings.limit}` per task, so the "
        "numbers are not comparable with full runs.\n"
        if settings.limit
        else ""
    )
    return f"""# LFTF report: {info["model"]}

Produced by {info["produced_by"]} on {info["date"]} with `{info["command"]}`.
Model: `{info["resolved_model"]}`; seed {info["seed"]}; package versions in `report.json`.
{limit}
Every number below comes from lm-eval's `genbiaseval` and `genhinteval` tasks (test splits;
raw results in `rows/<method>/lm_eval_results.json`) and, for trained rows, from the
trainer's record (`rows/<method>/lftf_run.json`). ± is lm-eval's standard error; brackets
give the change against the original model.

## Main comparison (the paper's Table 4 layout)

Trained rows fine-tune block(s) {info["blocks"]} (the top `{info["base_config"]["bmi_source"]}`
BMI block) with L = -log P(he|p) - log P(she|p): the paper's defaults (lr 1e-5, 2 epochs)
and dev-tuned settings (lr {tuned.get("lr", "–")}, {tuned.get("epochs", "–")} epochs, chosen
with `lftf-train sweep` on the dev splits). FPFT trains every block with the same loss
(lr {fpft.get("lr", "–")}, {fpft.get("epochs", "–")} epoch(s); see the cost table below). PB puts this instruction before every prompt (lm-eval
`system_instruction`): "{settings.pb_instruction}"

{_table(rows, main, bias_cols + view_cols)}

{not_run}

## Capability kept (offline)

Next-token agreement and KL(original ‖ method) on {len(capability.neutral_prompts())} neutral
prompts, and perplexity on a neutral essay, both shipped with `lftf` (no model hub needed).
{"General tasks from lm-eval, run in the same harness call: " + ", ".join(settings.general_tasks) + "." if settings.general_tasks else "Add lm-eval general tasks with `--general-tasks mmlu,gsm8k,hellaswag,...` (needs the hub)."}

{_table(rows, main, general_cols)}

## Ablations (the paper's Tables 6 and 8)

w/o ATT trains only the MLP (and its norm); w/o MLP only self-attention (and its norm);
w/o he keeps only -log P(she) in the loss; w/o she only -log P(he). Settings as LFTF
(dev-tuned).

{_table(rows, ablations, bias_cols + view_cols + general_cols[:3])}

## Training cost

{_cost_table(rows)}

## Locating (the paper's Figure 2 and Table 7)

![BMI per block](bmi.png)

BMI over seeds {", ".join(map(str, bmi["seeds"]))} ({bmi["n_prompts"]} GenBiasEval-train prompts each):

{robustness}

## Case study (the paper's Figure 3)

P(he) and P(she) averaged over the nine GenBiasEval templates for {", ".join(CASE_STUDY)}
(direct next-token softmax of the same models; footballer is not among the 262
professions).

![case study](case_study.png)

## Bias per profession

Mean signed gap P(he) - P(she) over each profession's GenBiasEval-test prompts, from
lm-eval's logged samples, original against LFTF (dev-tuned).

![per profession](per_profession.png)
"""
