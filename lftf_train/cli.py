"""lftf-train: argument parsing only; the work is in pipeline.py."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from lftf_tasks.outputs import command_line
from lftf_train.config import BMI_SOURCES, LOCATORS, METHOD_CHOICES, SELECT_CHOICES, LFTFConfig
from lftf_train.editors.config import DAMA_RANKS, EDITORS, TARGET_RULES, DAMAConfig, EditConfig

HELP = LFTFConfig.help()
DAMA_HELP = DAMAConfig.help()
EDIT_HELP = EditConfig.help()
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
  lftf-train dama                        # the DAMA baseline; rank and blocks chosen on dev
  lftf-train edit --editor memit --limit 20   # a knowledge editor, 20 sequential edits
  lftf-train report                      # all of the paper's comparisons -> report.md
  accelerate launch -m lftf_train finetune ...   # data-parallel

The fine-tuned folder is a PEFT adapter holding only the trained block(s):
  lm_eval --model hf --model_args pretrained=BASE,peft=OUT --tasks genbiaseval,genhinteval \\
      --include_path "$(lftf-tasks-path)"
"""


def _common(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("common")
    g.add_argument("--model", help=HELP["model"] + " Default: smollm2-135m.")
    g.add_argument("--axis", help=HELP["axis"] + " Default: gender.")
    g.add_argument(
        "--output-dir",
        type=Path,
        help="Folder to write; it appears only when the command succeeds. "
        "Default: outputs/<command>/<model>.",
    )
    g.add_argument("--seed", type=int, help="Seed for sampling, shuffling and init (default 42).")
    g.add_argument(
        "--config",
        type=Path,
        help="The command's config as JSON or YAML (e.g. a saved lftf_config.json or "
        "dama_config.json); flags given on the command line override it.",
    )
    g.add_argument("--overwrite", action="store_true", help="Replace an existing output folder.")
    g.add_argument(
        "--dtype", choices=["auto", "float32", "bfloat16", "float16"], help=HELP["dtype"]
    )
    g.add_argument("--device-map", dest="device_map", choices=["auto"], help=HELP["device_map"])
    g.add_argument(
        "--eval-batch-size", dest="eval_batch_size", type=int, help=HELP["eval_batch_size"]
    )


def _locate(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("locating")
    g.add_argument("--locator", choices=LOCATORS, help=HELP["locator"])
    g.add_argument("--bmi-source", dest="bmi_source", choices=BMI_SOURCES, help=HELP["bmi_source"])
    g.add_argument("--locate-prompts", dest="locate_prompts", type=int, help=HELP["locate_prompts"])


def _train(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("fine-tuning")
    g.add_argument("--method", choices=METHOD_CHOICES, help=HELP["method"])
    g.add_argument("--blocks", help=HELP["blocks"])
    g.add_argument("--num-blocks", dest="num_blocks", type=int, help=HELP["num_blocks"])
    g.add_argument("--modules", help=HELP["modules"])
    g.add_argument("--terms", help=HELP["terms"])
    g.add_argument("--lr", type=float, help=HELP["lr"])
    g.add_argument("--epochs", type=int, help=HELP["epochs"])
    g.add_argument("--batch-size", dest="batch_size", type=int, help=HELP["batch_size"])
    g.add_argument("--weight-decay", dest="weight_decay", type=float, help=HELP["weight_decay"])
    g.add_argument("--max-grad-norm", dest="max_grad_norm", type=float, help=HELP["max_grad_norm"])
    g.add_argument("--select", choices=SELECT_CHOICES, help=HELP["select"])
    g.add_argument("--patience", type=int, help=HELP["patience"])
    g.add_argument("--min-ub-ratio", dest="min_ub_ratio", type=float, help=HELP["min_ub_ratio"])
    g.add_argument("--lora-r", dest="lora_r", type=int, help=HELP["lora_r"])
    g.add_argument("--lora-alpha", dest="lora_alpha", type=int, help=HELP["lora_alpha"])
    g.add_argument("--lora-dropout", dest="lora_dropout", type=float, help=HELP["lora_dropout"])
    g.add_argument(
        "--merged",
        action="store_true",
        help="Also write OUT/merged: a full model with the trained weights folded in.",
    )
    g.add_argument(
        "--naive",
        action="store_true",
        help="A full forward per step instead of the cached prefix (same losses, "
        "slower; for checking and benchmarks).",
    )


# The value optimisation and second-moment settings DAMA and the knowledge editors share.
VALUE_FLAGS = {
    "v_num_grad_steps": int,
    "v_lr": float,
    "v_weight_decay": float,
    "clamp_norm_factor": float,
    "kl_factor": float,
    "mom2_update_weight": float,
    "cov_tokens": int,
}


def _value_flags(group, helps: dict[str, str], extra: dict[str, type]) -> None:
    for name, kind in {**VALUE_FLAGS, **extra}.items():
        group.add_argument("--" + name.replace("_", "-"), dest=name, type=kind, help=helps[name])
    group.add_argument("--cov-text", dest="cov_text", help=helps["cov_text"])


def _dama(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("DAMA")
    g.add_argument("--layers", action="append", help=DAMA_HELP["layers"] + " Repeat to sweep.")
    g.add_argument("--ranks", help=DAMA_HELP["ranks"] + " Default: 8,16,32,64,128.")
    g.add_argument("--rank", type=int, dest="rank", help="One rank: no choice on dev.")
    g.add_argument("--targets", help=DAMA_HELP["targets"] + " Default: he,she,they.")
    _value_flags(g, DAMA_HELP, {"value_batch_size": int, "min_ub_ratio": float})
    g.add_argument("--whitening", action="store_true", default=None, help=DAMA_HELP["whitening"])


def _edit(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("editing")
    g.add_argument("--editor", choices=EDITORS, help=EDIT_HELP["editor"] + " Default: rome.")
    g.add_argument("--layers", help=EDIT_HELP["layers"])
    g.add_argument("--limit", type=int, help=EDIT_HELP["limit"])
    g.add_argument("--target", choices=TARGET_RULES, help=EDIT_HELP["target"])
    _value_flags(g, EDIT_HELP, {})
    g.add_argument(
        "--mom2-adjustment",
        dest="mom2_adjustment",
        action=argparse.BooleanOptionalAction,
        help=EDIT_HELP["mom2_adjustment"],
    )
    g.add_argument(
        "--context-prefixes",
        dest="context_prefixes",
        action=argparse.BooleanOptionalAction,
        help=EDIT_HELP["context_prefixes"] + " Default: on.",
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lftf-train",
        description="LFTF: locate the blocks most tied to gender bias (BMI), then fine-tune "
        "only those with L = -log P(he|p) - log P(she|p) on GenBiasEval-train. With --axis, "
        "any bias axis given as a spec: L = -sum over groups of log P(group|p).",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    loc = sub.add_parser(
        "locate",
        help="rank blocks by BMI (both sources) and by the skip locator; write bmi.json, "
        "bmi.png and locators.png",
    )
    _common(loc)
    _locate(loc)
    loc.add_argument(
        "--seeds",
        help="Comma-separated seeds, e.g. 1,2,3,4,5: repeat on that many "
        "prompt samples and report the per-block variance (the paper's Table 7).",
    )
    ft = sub.add_parser(
        "finetune", help="locate (if --blocks auto), then train and save an adapter"
    )
    run = sub.add_parser(
        "run",
        help="finetune, plus lm-eval on genbiaseval/genhinteval before "
        "and after, printed side by side",
    )
    for p in (ft, run):
        _common(p)
        _locate(p)
        _train(p)
    sweep = sub.add_parser(
        "sweep",
        help="one fine-tuning per learning rate; choose on the dev splits "
        "(dev AFGB, guarded by dev UB); saves the comparison only",
    )
    _common(sweep)
    _locate(sweep)
    _train(sweep)
    sweep.add_argument(
        "--lrs",
        default="3e-5,1e-4,3e-4",
        help="Comma-separated learning rates to try (default 3e-5,1e-4,3e-4).",
    )
    dama_cmd = sub.add_parser(
        "dama",
        help="the DAMA baseline (Limisiewicz et al. 2024): project the gender directions out of "
        "the MLPs; rank and blocks chosen on the dev splits; saves a PEFT adapter",
    )
    _common(dama_cmd)
    _dama(dama_cmd)
    edit_cmd = sub.add_parser(
        "edit",
        help="a knowledge editor (ROME, R-ROME, MEMIT) applied to GenBiasEval-train, one edit "
        "after another, as the paper's Table 3; saves a PEFT adapter and edits.json",
    )
    _common(edit_cmd)
    _edit(edit_cmd)
    report = sub.add_parser(
        "report",
        help="the paper's comparisons (LFTF, FPFT, PB, ablations) through lm-eval: "
        "report.md, results.csv, figures",
    )
    _common(report)
    _locate(report)
    g = report.add_argument_group("report")
    g.add_argument(
        "--tuned-lr",
        type=float,
        default=1e-4,
        help="learning rate of the 'dev-tuned' LFTF row and the ablations "
        "(default 1e-4, chosen for SmolLM2 by `lftf-train sweep`)",
    )
    g.add_argument("--tuned-epochs", type=int, default=7, help="epochs of those rows (default 7)")
    g.add_argument("--fpft-lr", type=float, help="FPFT learning rate (default: --tuned-lr)")
    g.add_argument("--fpft-epochs", type=int, default=1, help="FPFT epochs (default 1)")
    g.add_argument("--seeds", default="1,2,3,4,5", help="BMI robustness seeds (default 1,2,3,4,5)")
    g.add_argument("--pb-instruction", help="the PB baseline's instruction (default: see report)")
    g.add_argument("--limit", type=int, help="lm-eval --limit per task (quick, not comparable)")
    g.add_argument(
        "--dama-layers",
        default="auto",
        help="blocks of the DAMA row (default: auto, 19-27 on SmolLM2's 30 blocks)",
    )
    g.add_argument(
        "--dama-ranks",
        default=",".join(map(str, DAMA_RANKS)),
        help="rank of the DAMA row; several are chosen among on dev (default: "
        f"{','.join(map(str, DAMA_RANKS))}, what `lftf-train dama` chose for SmolLM2)",
    )
    g.add_argument(
        "--edit-limit",
        type=int,
        default=6,
        help="sequential edits of each knowledge-editor row (ROME, R-ROME, MEMIT; default 6, "
        "CPU-sized; `lftf-train edit` runs all 943)",
    )
    g.add_argument(
        "--rows",
        help="only these rows, comma-separated (e.g. 'ROME,MEMIT'); the original always runs",
    )
    g.add_argument(
        "--save-adapters",
        action="store_true",
        help="keep every row's adapter under rows/<method>/adapter",
    )
    run.add_argument(
        "--limit",
        type=int,
        help="lm-eval --limit per task (for quick checks; omit for real numbers).",
    )
    for p in (run, report):
        p.add_argument(
            "--general-tasks",
            default="",
            help="lm-eval tasks run in the same harness call, e.g. mmlu,gsm8k,hellaswag (from "
            "lm-eval's registry, which needs the hub, or from --include-path)",
        )
        p.add_argument(
            "--include-path",
            help="your own lm-eval task folders (DIR or DIR:DIR), searched after ours, as "
            "lm_eval's --include_path: local or offline tasks for --general-tasks",
        )
    return parser


def config_from_args(args: argparse.Namespace):
    """The command's config (LFTFConfig, or DAMAConfig for dama) from --config and flags."""
    kind = {"dama": DAMAConfig, "edit": EditConfig}.get(args.command, LFTFConfig)
    fields = set(kind.help())
    overrides = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    if args.command == "sweep":  # a sweep always selects on dev, so --patience applies
        overrides["select"] = "best_dev"
    if getattr(args, "rank", None) is not None:
        overrides["ranks"] = [args.rank]
    if args.config is not None:
        return kind.from_file(args.config, **overrides)
    return kind(**overrides)


def main(argv: list[str] | None = None) -> int:
    """lftf-train; ``argv`` (default sys.argv[1:]) is also what outputs record as the command."""
    argv = sys.argv[1:] if argv is None else [str(a) for a in argv]
    token = command_line.set(["lftf-train", *argv])
    try:
        return _main(argv)
    finally:
        command_line.reset(token)


def _main(argv: list[str]) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        config = config_from_args(args)
        seeds = [int(s) for s in args.seeds.split(",")] if getattr(args, "seeds", None) else None
        lrs = [float(x) for x in args.lrs.split(",")] if args.command == "sweep" else None
    except (ValueError, FileNotFoundError) as err:
        parser.error(str(err))
    if args.command == "report" and config.load_axis().name != "gender":
        parser.error(
            "report reproduces the paper's gender comparisons; for another axis use "
            f"`lftf-train run --axis {config.axis}`"
        )
    out_dir = args.output_dir or Path("outputs") / args.command / Path(config.model).name

    from lftf_train.scoring import TargetTokenError

    try:
        _run(args, config, out_dir, seeds=seeds, lrs=lrs)
    except (
        FileExistsError,
        FileNotFoundError,
        TargetTokenError,
        FloatingPointError,
        ValueError,
    ) as err:
        print(f"lftf-train: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lftf-train: interrupted; no output was written", file=sys.stderr)
        return 130
    return 0


def _run(args, config: LFTFConfig, out_dir: Path, *, seeds, lrs) -> None:
    from lftf_train import pipeline
    from lftf_train.evaluate import Evaluation

    if args.command == "locate":
        pipeline.run_locate(config, out_dir, args.overwrite, seeds=seeds)
    elif args.command == "report":
        from lftf_train.report import PB_INSTRUCTION, ReportSettings, run_report

        settings = ReportSettings(
            tuned_lr=args.tuned_lr,
            tuned_epochs=args.tuned_epochs,
            fpft_lr=args.fpft_lr,
            fpft_epochs=args.fpft_epochs,
            seeds=seeds,
            general_tasks=_csv(args.general_tasks),
            include_path=_paths(args.include_path),
            limit=args.limit,
            pb_instruction=args.pb_instruction or PB_INSTRUCTION,
            save_adapters=args.save_adapters,
            dama_layers=args.dama_layers,
            dama_ranks=[int(r) for r in args.dama_ranks.split(",")],
            edit_limit=args.edit_limit,
            rows=[r.strip() for r in args.rows.split(",")] if args.rows else None,
        )
        run_report(config, settings, out_dir, args.overwrite)
    elif args.command == "sweep":
        pipeline.run_sweep(config, lrs, out_dir, args.overwrite)
    elif args.command == "dama":
        pipeline.run_dama(config, out_dir, args.overwrite)
    elif args.command == "edit":
        pipeline.run_edit(config, out_dir, args.overwrite)
    else:
        pipeline.run_finetune(
            config,
            out_dir,
            args.overwrite,
            merged=args.merged,
            naive=args.naive,
            evaluation=Evaluation(
                limit=args.limit,
                general_tasks=_csv(args.general_tasks),
                include_path=_paths(args.include_path),
            )
            if args.command == "run"
            else None,
        )


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
