"""lftf-train: argument parsing only, over the Python API (pipeline.py).

Every registered method is a sub-command whose flags are built from its config dataclass
(each field's type, default, help, choices and group); ``locate``, ``sweep`` and
``report`` take the locating fields and their own.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
import typing
from pathlib import Path

from lftf_tasks.outputs import command_line
from lftf_train.config import ConfigError, LocateConfig
from lftf_train.evaluate import DEFAULT_GENERAL_TASKS
from lftf_train.registry import get_method, methods

EXAMPLES = """\
examples:
  lftf-train locate                      # BMI of every block of the embedded SmolLM2 model
  lftf-train locate --seeds 1,2,3,4,5    # + the paper's seed-robustness check (Table 7)
  lftf-train run --axis religion         # another bias axis (or --axis my_axis.yaml)
  lftf-train finetune --locator skip     # train the block whose removal moves the bias most
  lftf-train sweep --epochs 10           # try learning rates; choose on the dev splits
  lftf-train finetune --lr 1e-4 --epochs 10 --select best_dev
  lftf-train finetune --blocks all       # FPFT baseline: every block, same loss
  lftf-train finetune --modules attn     # ablation w/o MLP   (--modules mlp: w/o ATT)
  lftf-train finetune --terms he         # ablation w/o she   (--terms she: w/o he)
  lftf-train run --model Qwen/Qwen2.5-7B --method lora --dtype bfloat16
  lftf-train dama --evaluate             # the DAMA baseline, lm-eval before and after
  lftf-train edit --editor memit --edits 20   # a knowledge editor, 20 sequential edits
  lftf-train pb                          # the prompt-based baseline
  lftf-train report                      # all of the paper's comparisons -> report.md
  accelerate launch -m lftf_train finetune ...   # data-parallel

Every method's folder is a PEFT adapter holding only what changed:
  lm_eval --model hf --model_args pretrained=BASE,peft=OUT --tasks genbiaseval,genhinteval \\
      --include_path "$(lftf-tasks-path)"
"""


def _flag_kwargs(f: dataclasses.Field, hint) -> dict:
    """argparse keywords for a config field: its type (bool: --x/--no-x; int, float, str;
    anything else is text the config parses, like '3,10'), choices, help with the default."""
    args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
    kind = args[0] if len(args) == 1 else str
    help_ = f.metadata.get("help", "")
    default = f.default if f.default is not dataclasses.MISSING else None
    if default is not None and "Default" not in help_:
        shown = ",".join(map(str, default)) if isinstance(default, tuple) else default
        help_ += f" Default: {shown}."
    kwargs = {"dest": f.name, "default": None, "help": help_.replace("%", "%%")}
    if kind is bool:
        return {**kwargs, "action": argparse.BooleanOptionalAction}
    if f.metadata.get("repeat"):
        kwargs["action"] = "append"
    if f.metadata.get("choices"):
        kwargs["choices"] = f.metadata["choices"]
    return {**kwargs, "type": kind if kind in (int, float, str) else str}


def add_config_flags(parser, cls, groups: set[str] | None = None) -> None:
    """One flag per field of ``cls`` (``--eval-batch-size`` for eval_batch_size), in argument
    groups named by the fields' ``group``; ``groups``: only those."""
    hints = typing.get_type_hints(cls)
    made = {}
    for f in dataclasses.fields(cls):
        name = f.metadata.get("group", "options")
        if groups is not None and name not in groups:
            continue
        if name not in made:
            made[name] = parser.add_argument_group(name)
        made[name].add_argument("--" + f.name.replace("_", "-"), **_flag_kwargs(f, hints[f.name]))


def _output_flags(parser) -> None:
    g = parser.add_argument_group("output")
    g.add_argument(
        "--output-dir",
        type=Path,
        help="Folder to write; it appears only when the command succeeds. "
        "Default: outputs/<command>/<model>.",
    )
    g.add_argument(
        "--config",
        type=Path,
        help="The command's config as JSON or YAML (e.g. a saved lftf_config.json); flags "
        "given on the command line override it.",
    )
    g.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    return g


def _evaluation_flags(parser, with_evaluate: bool = True) -> None:
    g = parser.add_argument_group("evaluation (lm-eval)")
    if with_evaluate:
        g.add_argument(
            "--evaluate",
            action="store_true",
            help="lm-eval on the axis's tasks before and after, the output loaded as saved "
            "(peft=); printed side by side and written to summary.md (`run` always does).",
        )
    g.add_argument(
        "--limit",
        type=int,
        help="lm-eval's --limit: at most N docs of each task in the evaluation (quick, not "
        "comparable). It counts no training prompts or edits (edit: --edits).",
    )
    g.add_argument(
        "--general-tasks",
        default=",".join(DEFAULT_GENERAL_TASKS),
        help="lm-eval tasks run in the same harness call as the bias tasks (default: "
        f"{','.join(DEFAULT_GENERAL_TASKS)}, the paper's MMLU column, letters A-D, and its "
        "cloze form, the signal on small models; 'none' for none): lm-eval's own tasks, "
        "from the hub, or from local copies when LFTF_REFERENCE_DIR holds capability/ "
        "(mmlu, gsm8k, piqa, winogrande, ...), or from --include-path",
    )
    g.add_argument(
        "--general-limit",
        type=_general_limit,
        help="only the first N test docs of each subtask of the general tasks (e.g. 2 of "
        "each of MMLU's 57 subjects, a fixed subset; lm-eval's --samples); default: all "
        "14,042 MMLU questions (hours on a CPU). TASK=N,... limits those tasks only, e.g. "
        "gsm8k=50 (generation is slow on a CPU). Ignored with --limit",
    )
    g.add_argument(
        "--include-path",
        help="your own lm-eval task folders (DIR or DIR:DIR), searched after ours, as "
        "lm_eval's --include_path: local or offline tasks for --general-tasks",
    )


def _method_command(sub, method) -> None:
    p = sub.add_parser(method.name, aliases=list(method.aliases), help=method.help)
    add_config_flags(p, method.config_cls)
    _output_flags(p).add_argument(
        "--merged",
        action="store_true",
        help="Also write OUT/merged: a full model with the adapter folded in.",
    )
    _evaluation_flags(p)


def build_parser() -> argparse.ArgumentParser:
    from lftf_train.report import ReportSettings, row_labels

    parser = argparse.ArgumentParser(
        prog="lftf-train",
        description="LFTF: locate the blocks most tied to gender bias (BMI), then fine-tune "
        "only those with L = -log P(he|p) - log P(she|p) on GenBiasEval-train; and the "
        "baselines it is compared with, one sub-command per registered method. With "
        "--axis, any bias axis given as a spec: L = -sum over groups of log P(group|p).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    loc = sub.add_parser(
        "locate",
        help="rank blocks by BMI (both sources) and by the skip locator; write bmi.json, "
        "bmi.png and locators.png",
    )
    add_config_flags(loc, LocateConfig)
    _output_flags(loc)
    loc.add_argument(
        "--seeds",
        help="Comma-separated seeds, e.g. 1,2,3,4,5: repeat on that many prompt samples and "
        "report the per-block variance (the paper's Table 7).",
    )
    for method in methods().values():
        _method_command(sub, method)
    sweep = sub.add_parser(
        "sweep",
        help="one LFTF fine-tuning per learning rate; choose on the dev splits (dev AFGB, "
        "guarded by dev UB); saves the comparison only",
    )
    add_config_flags(sweep, get_method("lftf").config_cls)
    _output_flags(sweep)
    sweep.add_argument(
        "--lrs",
        default="3e-5,1e-4,3e-4",
        help="Comma-separated learning rates to try (default 3e-5,1e-4,3e-4).",
    )
    report = sub.add_parser(
        "report",
        help="every registered method's rows through lm-eval (the paper's comparisons): "
        "report.md, results.csv, figures",
        epilog="rows (for --rows): " + ", ".join(row_labels()),
    )
    add_config_flags(report, LocateConfig)
    _output_flags(report)
    add_config_flags(report, ReportSettings, groups={"report"})
    for method in methods().values():  # each method's own report flags, in its own group
        if method.report.options:
            add_config_flags(report, method.report.options)
    _evaluation_flags(report, with_evaluate=False)
    return parser


def config_from_args(args: argparse.Namespace):
    """The command's config from --config and the flags given."""
    cls, name = _config_class(args.command)
    fields = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.command == "sweep":  # a sweep always selects on dev, so --patience applies
        overrides["select"] = "best_dev"
    if args.config is not None:
        return cls.from_file(args.config, method=name, **overrides)
    return cls(**overrides)


def _config_class(command: str) -> tuple[type, str | None]:
    if command in ("locate", "report"):
        return LocateConfig, None
    method = get_method("lftf" if command == "sweep" else command)
    return method.config_cls, method.name


def main(argv: list[str] | None = None) -> int:
    """lftf-train; ``argv`` (default sys.argv[1:]) is also what outputs record as the command."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    token = command_line.set(["lftf-train", *argv])
    on_term = _interrupt_on_sigterm()
    try:
        return _main(argv)
    finally:
        command_line.reset(token)
        if on_term is not None:
            signal.signal(signal.SIGTERM, on_term)


def _raise_interrupt(signum, frame):
    raise KeyboardInterrupt


def _interrupt_on_sigterm():
    """Make SIGTERM (``kill``, a scheduler's time limit) an interrupt like Ctrl-C, so the
    output folder is cleaned up; the previous handler, or None off the main thread."""
    try:
        return signal.signal(signal.SIGTERM, _raise_interrupt)
    except ValueError:  # signal handlers can only be set from the main thread
        return None


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        plan = _plan(args, config)
    except (ValueError, FileNotFoundError) as err:  # one line, before any work
        print(f"lftf-train {args.command}: {_refusal(args, err)}", file=sys.stderr)
        return 2
    out_dir = args.output_dir or Path("outputs") / args.command / Path(config.model).name

    from lftf_tasks.reference import ReferenceDataError
    from lftf_train.scoring import TargetTokenError

    try:
        _fetch_data(config)
        plan(out_dir)
    except (
        FileExistsError,
        FileNotFoundError,
        TargetTokenError,
        FloatingPointError,
        ValueError,
        ReferenceDataError,
    ) as err:
        print(f"lftf-train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lftf-train: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0


def _fetch_data(config) -> None:
    """The published files and the data built from them, before any model is loaded: a
    missing file is one clear error now, not after minutes of work."""
    if config.load_axis().uses_professions:
        from lftf_tasks.build import data_dir

        data_dir()


def _refusal(args, err: Exception) -> str:
    """What was refused, in the words of the command line: a config field's error names the
    flag and the value given (``--edits 100000: ...``), not the dataclass field."""
    if not isinstance(err, ConfigError):
        return str(err)
    flag = "--" + err.field.replace("_", "-")
    given = getattr(args, err.field, None)
    if given is None:  # the default, or a value from --config
        return f"{flag}: {err.why}"
    shown = " ".join(map(str, given)) if isinstance(given, list) else given
    return f"{flag} {shown}: {err.why}"


def _check_limit(args, config) -> None:
    """--limit is lm-eval's docs per task. It used to be edit's number of edits (now
    --edits), so an old `edit --limit 6` would edit all 943 requests: refused, as is a
    --limit where nothing is evaluated."""
    if args.limit is None:
        return
    if args.command == "edit" and config.edits is None:
        raise ValueError(
            f"--limit {args.limit}: --limit is lm-eval's docs-per-task limit; the number of "
            f"edits is --edits (--edits {args.limit} for {args.limit} edits; --evaluate "
            "--limit N with --edits for a quick evaluation)"
        )
    if args.command not in ("run", "report") and not args.evaluate:
        raise ValueError(
            f"--limit {args.limit}: --limit is lm-eval's docs per task, and nothing is "
            "evaluated without --evaluate"
        )


def _plan(args, config):
    """What the command will do, with every argument checked before any work: a function
    of the output folder."""
    from lftf_train import pipeline

    if args.command == "locate":
        seeds = _ints(args.seeds)
        return lambda out: pipeline.run_locate(config, out, args.overwrite, seeds=seeds)
    if args.command == "sweep":
        lrs = [float(x) for x in args.lrs.split(",")]
        return lambda out: pipeline.run_sweep(config, lrs, out, args.overwrite)
    evaluation = _evaluation(args)  # checks --limit and --include-path before any work
    _check_limit(args, config)
    if args.command == "report":
        from lftf_train import report

        settings = report.settings_from_args(args, config, evaluation)
        return lambda out: report.run_report(config, settings, out, args.overwrite)
    if not (args.evaluate or args.command == "run"):
        evaluation = None
    return lambda out: pipeline.run_method(
        config, out, args.overwrite, merged=args.merged, evaluation=evaluation
    )


def _evaluation(args):
    from lftf_train.evaluate import Evaluation

    tasks = [] if args.general_tasks.strip().lower() == "none" else _csv(args.general_tasks)
    return Evaluation(
        limit=args.limit,
        general_tasks=tasks,
        general_limit=args.general_limit,
        include_path=_paths(args.include_path),
    )


def _general_limit(text: str) -> int | dict[str, int]:
    from lftf_train.evaluate import parse_general_limit

    try:
        return parse_general_limit(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: give N (e.g. 2) or TASK=N pairs (e.g. gsm8k=50,gsm_plus_mini=50)"
        ) from None


def _ints(text: str | None) -> list[int] | None:
    return [int(s) for s in text.split(",")] if text else None


def _csv(text: str) -> list[str]:
    return [t.strip() for t in text.split(",") if t.strip()]


def _paths(text: str | None) -> list[str] | None:
    """'a:b' -> ['a', 'b'], each an existing folder (checked before any work)."""
    if not text:
        return None
    paths = [p for p in text.split(os.pathsep) if p]
    missing = [p for p in paths if not Path(p).is_dir()]
    if missing:
        raise FileNotFoundError(f"--include-path {':'.join(missing)}: no such folder")
    return paths


if __name__ == "__main__":
    sys.exit(main())
