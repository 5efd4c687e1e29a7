"""lftf-train report: every registered method's rows on one model, in one output folder.

The rows are a plan of (label, method, config overrides) that the methods register
(``registry.ReportRow``): the original model, then every registered method's rows (the
built-ins give the paper's Tables 4, 6 and 8). One function runs every row (``run_row``)
through ``debias()``, saves its output as the CLI does, and scores it with lm-eval's own
tasks from the saved adapter (``peft=``), exactly as a user would. The markdown is the
template ``templates/report.md.j2``; what is said about a method's rows, its report flags
and its figures come from the method itself (``registry.ReportPart``), so nothing here
names a method.
"""

from __future__ import annotations

import copy
import csv
import dataclasses
import shutil
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from lftf_tasks.axis import Axis
from lftf_tasks.outputs import (
    atomic_output_dir,
    check_output_dir,
    provenance,
    render_template,
    render_template_text,
    write_json,
)
from lftf_tasks.transfer import per_occupation_gap
from lftf_train import capability, models, plots
from lftf_train.api import debias
from lftf_train.config import Checks, LocateConfig, _csv, option
from lftf_train.evaluate import (
    SLOPE_COLUMNS,
    TRANSFER_COLUMNS,
    Evaluation,
    bias_summary,
    general_limit_text,
    general_metrics,
    lm_eval_model_args,
    run_lm_eval,
    summary_columns,
    transfer_summary,
)
from lftf_train.locating import locate_blocks, ranking_key
from lftf_train.prefix import PrefixCache
from lftf_train.records import footer, slug, write_locate_outputs
from lftf_train.registry import Context, Method, ReportRow, methods
from lftf_train.scoring import score_prompts, target_token_ids
from lftf_train.tables import comparison_table, markdown_table, span

TEMPLATE = Path(__file__).parent / "templates" / "report.md.j2"
CASE_STUDY = ("mobster", "nurse", "preacher", "caretaker", "footballer")
ORIGINAL = "Original"
CAPABILITY = [
    ("next_token_agreement", "next-token agreement ↑"),
    ("kl", "KL ↓"),
    ("neutral_ppl", "neutral PPL ↓"),
]
GENERAL_SUFFIXES = ("_acc", "_acc_norm", "_exact_match")
# The paper's MMLU column beside AFGB and UB, in the bias tables too (when it was run).
MMLU_COLUMNS = [("mmlu_acc", "MMLU (A–D) ↑"), ("mmlu_continuation_acc", "MMLU cloze ↑")]
REPORT = "report"


@dataclass
class ReportSettings(Checks):
    """What every row shares besides the base config (model, seed, dtype, BMI source): the
    `lftf-train report` flags of group 'report', lm-eval's settings, and ``options``: each
    method's own report options (``registry.ReportPart.options``), by method name."""

    seeds: object = option((1, 2, 3, 4, 5), "BMI robustness seeds", group=REPORT)
    rows: object = option(
        None,
        "only these rows, comma-separated (their labels, listed below); the original always runs",
        group=REPORT,
    )
    save_adapters: bool = option(
        False, "keep every row's adapter under rows/<method>/adapter", group=REPORT
    )
    limit: int | None = None  # lm-eval --limit per task (quick, not comparable)
    general_tasks: tuple = ()  # lm-eval tasks run in the same call, e.g. mmlu,hellaswag
    include_path: tuple | None = None  # a user's lm-eval task folders
    general_limit: int | dict | None = None  # the first N docs of each general subtask
    options: dict = field(default_factory=dict)  # method name -> its report options

    def __post_init__(self) -> None:
        self.seeds = [int(s) for s in _csv(self.seeds)]
        self.rows = None if self.rows is None else list(_csv(self.rows))
        self.general_tasks = list(self.general_tasks)
        if not self.seeds:
            self._fail("seeds", "at least one seed, e.g. '1,2,3,4,5'")
        for name, method in methods().items():  # every method's options, defaulted if not given
            if method.report.options and name not in self.options:
                self.options[name] = method.report.options()

    def check_counts(self, axis: Axis) -> None:
        """What a method's options can only check against the axis (e.g. a count drawn from
        its train split)."""
        for options in self.options.values():
            if hasattr(options, "check"):
                options.check(axis)


def method_options(args) -> dict:
    """Each method's report options from the parsed flags (those not given: defaults)."""
    found = {}
    for name, method in methods().items():
        if method.report.options:
            names = {f.name for f in dataclasses.fields(method.report.options)}
            given = {k: v for k, v in vars(args).items() if k in names and v is not None}
            found[name] = method.report.options(**given)
    return found


def settings_from_args(args, config: LocateConfig, evaluation) -> ReportSettings:
    """The report's settings from its flags and lm-eval's (``evaluation``), checked against
    the row plan."""
    axis = config.load_axis()
    if axis.name != "gender":
        raise ValueError(
            "report reproduces the paper's gender comparisons; for another axis use "
            f"`lftf-train run --axis {config.axis}`"
        )
    fields = {f.name for f in dataclasses.fields(ReportSettings) if f.metadata.get("group")}
    given = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    settings = ReportSettings(
        **given,
        options=method_options(args),
        limit=evaluation.limit,
        general_tasks=evaluation.general_tasks,
        include_path=evaluation.include_path,
        general_limit=evaluation.general_limit,
    )
    settings.check_counts(axis)
    labels = row_labels(axis)
    unknown = [r for r in settings.rows or [] if r not in labels]
    if unknown:
        raise ValueError(f"--rows: no row {unknown}; the rows are {', '.join(labels)}")
    return settings


def plan(axis: Axis) -> list[tuple[ReportRow, Method | None]]:
    """Every row, in the order of the paper's tables: the original model, every registered
    method's main rows (in registration order), then the ablations."""
    rows = [(row, m) for m in methods().values() for row in m.report_rows(axis)]
    main = [(r, m) for r, m in rows if r.table == "main"]
    return [(ReportRow(ORIGINAL), None), *main, *[(r, m) for r, m in rows if r.table != "main"]]


def row_labels(axis: Axis | None = None) -> list[str]:
    from lftf_tasks.axis import load_axis

    return [row.label for row, _ in plan(axis or load_axis("gender"))]


def row_config(base: LocateConfig, method: Method, overrides: dict):
    """A row's config: the base config's fields that the row's method has (the run fields;
    for a method that locates, the locating fields too), then the row's overrides."""
    names = {f.name for f in dataclasses.fields(method.config_cls)}
    values = {k: v for k, v in base.to_dict().items() if k in names}
    return method.config_cls(**{**values, **overrides})


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
    """The text lm-eval put before the prompt (a system instruction and its delimiter)."""
    s = samples[axis.hint_task][0]
    context, prompt = s["arguments"][0][0], s["doc"]["prompt"]  # (context, " he") request
    return context[: context.rindex(prompt)]


@dataclass
class _Shared:
    """What every row shares: the base model, how lm-eval loads it, the references, and the
    context every method runs in (the locate report, the prefix cache)."""

    config: LocateConfig
    settings: ReportSettings
    axis: Axis
    base: object
    tokenizer: object
    base_args: str
    context: Context
    reference: object  # next-token log-distributions of the original on neutral prompts


def run_row(shared: _Shared, method: Method | None, config, folder: Path) -> tuple:
    """One row: its method applied with ``config`` to a copy of the base model through
    ``debias()``, the output saved as the CLI saves it (``folder/adapter``; the record and
    the method's files also in ``folder``): (model, lm-eval model_args, system instruction,
    row). No method: the original model."""
    if method is None:
        return shared.base, shared.base_args, None, {"status": "ok", "settings": ""}
    start = time.perf_counter()
    result = debias(copy.deepcopy(shared.base), shared.tokenizer, config, context=shared.context)
    result.write(folder / "adapter", artifacts=False)  # the figures go beside it, once
    result.write_records(folder)
    adapted = result.adapted
    entry = {"status": "ok", "method": method.name, "config": config.to_dict()}
    entry.update(settings=adapted.settings, **adapted.row)
    if adapted.label:
        entry["label"] = adapted.label
    entry["seconds"] = round(time.perf_counter() - start, 1)
    args = result.lm_eval_model_args(folder / "adapter")
    return result.model, args, result.system_instruction, entry


def _score_row(rows: _Shared, model, model_args: str, instruction, folder: Path) -> dict:
    """lm-eval on the bias, hint, transfer and general tasks, capability kept, the case study
    and per-subject gaps: {"scores", "case", "gaps", "occupations"}."""
    axis, tokenizer = rows.axis, rows.tokenizer
    settings = rows.settings
    evaluation = Evaluation(
        limit=settings.limit,
        general_tasks=settings.general_tasks,
        include_path=settings.include_path,
        general_limit=settings.general_limit,
    )
    results = run_lm_eval(
        model_args,
        tasks=evaluation.tasks(axis),
        system_instruction=instruction,
        log_samples=True,
        **evaluation.lm_eval_kwargs(),
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
        **transfer_summary(results),
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
    return {
        "scores": scores,
        "case": case,
        "gaps": per_profession_gap(results["samples"], axis),
        "occupations": per_occupation_gap(results["samples"]),
    }


def run_report(
    config: LocateConfig, settings: ReportSettings, out_dir: Path, overwrite: bool, log=print
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
    with atomic_output_dir(out_dir, overwrite) as tmp:
        log(f"locating: BMI of every block, seeds {settings.seeds}")
        seeded = dataclasses.replace(config, seed=settings.seeds[0])
        located = locate_blocks(base, tokenizer, seeded, seeds=settings.seeds)
        write_locate_outputs(tmp, located, resolved)
        blocks = sorted(located["ranking"][ranking_key(config)][:1])
        shared = _Shared(
            config=config,
            settings=settings,
            axis=axis,
            base=base,
            tokenizer=tokenizer,
            base_args=lm_eval_model_args(resolved, config),
            context=Context(
                resolved_model=resolved,
                log=log,
                located=located,
                prefix_cache=PrefixCache.build(
                    base, tokenizer, blocks[0], axis, config.eval_batch_size
                ),
            ),
            reference=capability.next_token_logprobs(base, tokenizer, capability.neutral_prompts()),
        )
        rows, figures = _run_rows(shared, tmp, log)
        info.update(blocks=blocks, rows=rows, case_study=figures["case"], bmi=located)
        _write_report_files(tmp, info, settings, axis, figures)
    log(f"wrote {out_dir}/report.md, results.csv and figures")
    return info


def _run_rows(shared: _Shared, folder: Path, log) -> tuple[dict, dict]:
    """Every planned row (those of settings.rows and the original), run and scored:
    (rows, {"case", "gaps", "occupations"} each by row label)."""
    rows, figures = {}, {"case": {}, "gaps": {}, "occupations": {}}
    todo = plan(shared.axis)
    wanted = shared.settings.rows
    start = time.perf_counter()
    for i, (row, method) in enumerate(todo, start=1):
        if row.not_run:
            rows[row.label] = {"status": row.not_run}
            continue
        if wanted is not None and row.label not in wanted and method is not None:
            continue
        try:
            options = shared.settings.options.get(method.name) if method else None
            overrides = row.config_overrides(options, shared.axis)
            config = method and row_config(shared.config, method, overrides)
        except ValueError as err:  # a method whose config refuses this axis says why
            rows[row.label] = {"status": f"not run: {err}"}
            continue
        log(f"[{i}/{len(todo)}] {row.label}  ({time.perf_counter() - start:.0f} s so far)")
        row_folder = folder / "rows" / slug(row.label)
        row_folder.mkdir(parents=True)
        model, model_args, instruction, entry = run_row(shared, method, config, row_folder)
        log(f"[{i}/{len(todo)}] {row.label}: lm-eval  ({time.perf_counter() - start:.0f} s so far)")
        scored = _score_row(shared, model, model_args, instruction, row_folder)
        for key, by_row in figures.items():
            by_row[row.label] = scored[key]
        rows[row.label] = {**entry, **scored["scores"]}
        if (row_folder / "adapter").exists() and not shared.settings.save_adapters:
            shutil.rmtree(row_folder / "adapter")
        del model
    return rows, figures


def reference_row(axis: Axis) -> str | None:
    """The row the ablations, the case study and the per-subject figure set beside the
    original (the one a method marks ``reference``)."""
    return next((row.label for row, _ in plan(axis) if row.reference), None)


def figure_rows(axis: Axis) -> list[str]:
    """The rows drawn in the transfer figure: the original and those marked ``in_figures``."""
    return [ORIGINAL, *[row.label for row, _ in plan(axis) if row.in_figures]]


def method_rows(rows: dict) -> dict[str, dict]:
    """{method name: {label: row}} of the rows that ran."""
    found = defaultdict(dict)
    for label, row in rows.items():
        if row.get("method") and row["status"] == "ok":
            found[row["method"]][label] = row
    return found


def _write_report_files(folder: Path, info, settings, axis, figures: dict) -> None:
    write_json(folder / "report.json", info)
    write_csv(folder / "results.csv", info["rows"], info, axis)
    note = footer(info, info["seed"])
    case, gaps, reference = figures["case"], figures["gaps"], reference_row(axis)
    occupations = {
        k: figures["occupations"][k] for k in figure_rows(axis) if figures["occupations"].get(k)
    }
    if len(occupations) > 1:
        plots.plot_transfer(
            occupations,
            folder / "transfer.png",
            title=f"Winogender: gap against the labour market, {info['model']}",
            footer=note,
        )
    plots.plot_case_study(
        {k: case[k] for k in (ORIGINAL, reference) if k in case},
        folder / "case_study.png",
        title=f"Case study: {info['model']}",
        labels=axis.labels,
        footer=note,
    )
    ran = method_rows(info["rows"])
    for name, method in methods().items():
        if method.report.figures and ran.get(name):
            method.report.figures(ran[name], folder, info, note)
    if reference in gaps:  # not in a report of some rows only
        plots.plot_per_profession(
            gaps[ORIGINAL],
            gaps[reference],
            folder / "per_profession.png",
            title=f"Bias per profession: {info['model']}",
            after_label=reference,
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
    transfer = [k for k, _ in TRANSFER_COLUMNS if any(k in r for r in rows.values())]
    metrics = keys + slopes + transfer + [key for key, _ in CAPABILITY] + _general_keys(rows)
    with_stderr = keys + _general_keys(rows)
    stderr = [f"{k}_stderr" for k in with_stderr if any(f"{k}_stderr" in r for r in rows.values())]
    return metrics, stderr


def write_csv(path: Path, rows: dict[str, dict], info: dict, axis: Axis) -> None:
    metrics, stderr = csv_metrics(rows, axis)
    original = rows[ORIGINAL]
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
            cells = [name, row["status"], row.get("settings", ""), *values, *deltas, *provenance_]
            writer.writerow(cells)


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


def local_capability() -> bool:
    from lftf_tasks import capability as local

    return local.available()


def report_tables(info: dict, axis: Axis) -> dict[str, str]:
    """The report's comparison tables from its record (``report.json``), by name: main,
    capability, ablation, slopes and transfer ("" where the rows lack them)."""
    rows = info["rows"]
    bias_cols = summary_columns(axis)
    general_cols = CAPABILITY + [(g, g) for g in _general_keys(rows)]
    mmlu_cols = [(k, label) for k, label in MMLU_COLUMNS if any(k in r for r in rows.values())]
    planned = plan(axis)
    main = [row.label for row, _ in planned if row.table == "main"]
    ablations = [reference_row(axis), *[row.label for row, _ in planned if row.table == "ablation"]]

    def table(names, columns):
        chosen = {rows[n].get("label", n): rows[n] for n in names if n in rows}
        original = rows[ORIGINAL].get("label", "Original")
        return comparison_table(chosen, columns, baseline=original, corner="method")

    has_transfer = any("winobias_pct_pro" in r for r in rows.values())
    return {
        "main": table(main, bias_cols + mmlu_cols),
        "capability": table(main, general_cols),
        "ablation": table(ablations, bias_cols + mmlu_cols + CAPABILITY),
        "slopes": table(main, SLOPE_COLUMNS) if axis.slopes else "",
        "transfer": table(main + ablations[1:], TRANSFER_COLUMNS) if has_transfer else "",
    }


def method_texts(info: dict, settings: ReportSettings, axis: Axis) -> dict[str, list[str]]:
    """{section: [each method's prose about its rows that ran]}, from its ReportPart.texts."""
    ran, texts = method_rows(info["rows"]), defaultdict(list)
    for name, method in methods().items():
        for section, source in method.report.texts.items():
            if ran.get(name):
                text = source.read_text(encoding="utf-8") if isinstance(source, Path) else source
                context = {"rows": ran[name], "options": settings.options.get(name)}
                texts[section].append(
                    render_template_text(text, **context, axis=axis, info=info, span=span)
                )
    return texts


def render_markdown(info: dict, settings: ReportSettings, axis: Axis) -> str:
    rows = info["rows"]
    tables = report_tables(info, axis)
    not_run = {n: r["status"] for n, r in rows.items() if r["status"].startswith("not run")}
    return render_template(
        TEMPLATE,
        info=info,
        settings=settings,
        axis=axis,
        texts=method_texts(info, settings, axis),
        reference=reference_row(axis),
        main_table=tables["main"],
        not_run={k: v.removeprefix("not run: ") for k, v in not_run.items()},
        n_neutral=len(capability.neutral_prompts()),
        local_capability=local_capability(),
        general_limit=general_limit_text(settings.general_limit) if settings.general_limit else "",
        capability_table=tables["capability"],
        ablation_table=tables["ablation"],
        slope_table=tables["slopes"],
        transfer_table=tables["transfer"],
        transfer_figure=[k for k in figure_rows(axis) if "winogender_bls_slope" in rows.get(k, {})],
        cost_table=_cost_table(rows),
        bmi=info["bmi"],
        robustness_table=_robustness_table(info["bmi"]),
        n_templates=sum(len(t) for t in axis.templates.values()),
        case_study=CASE_STUDY,
    )
