"""Export an axis's prompts (GenBiasEval and GenHintEval by default) as a Hugging Face Hub
dataset folder.

    lftf-export-dataset OUT_DIR [--axis gender]
    huggingface-cli upload ORG/genbiaseval OUT_DIR --repo-type dataset

The folder holds the data card (README.md with the Hub's config header: one config per
benchmark, the dev split named 'validation'), the JSONL splits, for profession subjects the
curated profession list and its licence, and an export.json saying what produced it. The
same files are what lftf-export-upstream's task folder loads.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lftf_tasks import build
from lftf_tasks.axis import Axis, AxisSpecError, data_files, load_axis
from lftf_tasks.outputs import atomic_output_dir, provenance, render_template, write_json
from lftf_tasks.reference import ReferenceDataError


def generic_card(axis: Axis) -> str:
    """A data card written from the spec, for axes without one of their own."""
    groups = "\n".join(f"| {g.name} | {', '.join(g.words)} | {g.hint} |" for g in axis.groups)
    templates = "\n".join(
        f"| {scale} | {t} |" for scale, temps in axis.templates.items() for t in temps
    )
    sizes = "\n".join(
        f"| {scale} | {a} | {b} | {c} |" for scale, (a, b, c) in axis.split_sizes.items()
    )
    return render_template(
        Path(__file__).with_name("templates") / "generic_card.md.j2",
        axis=axis,
        groups=groups,
        templates=templates,
        sizes=sizes,
        description=axis.description.strip(),
        config_header=build.config_header(axis),
        n_subjects=len(axis.subjects),
        n_templates=sum(len(t) for t in axis.templates.values()),
    )


def hub_files(axis: Axis, org: str | None = None) -> dict[str, str]:
    """The Hub dataset folder of an axis, as {path: text}, built from its spec (the gender
    card, the curated professions and their licence from the package's data build)."""
    files = {rel: text for rel, text in data_files(axis).items()}
    built = build.data_dir() if axis.name == "gender" or axis.uses_professions else None
    if axis.name == "gender":
        files["README.md"] = (built / "README.md").read_text(encoding="utf-8")
    else:
        files["README.md"] = generic_card(axis)
    if axis.uses_professions:
        for name in ("professions.json", "LICENSE-professions"):
            files[name] = (built / name).read_text(encoding="utf-8")
    return files


def export(out_dir: Path, overwrite: bool = False, axis: str = "gender") -> Path:
    spec = load_axis(axis)
    files = hub_files(spec)
    with atomic_output_dir(out_dir, overwrite) as tmp:
        for rel, text in files.items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_text(text, encoding="utf-8")
        info = provenance(axis=spec.name, build_seed=spec.seed, files=sorted(files))
        write_json(tmp / "export.json", info)
    return Path(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lftf-export-dataset",
        description=__doc__.split("\n\n")[0],
        epilog="Upload with: huggingface-cli upload ORG/NAME OUT_DIR --repo-type dataset",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--axis", default="gender", help="a built-in axis or a spec file")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    try:
        path = export(args.out_dir, overwrite=args.overwrite, axis=args.axis)
    except (FileExistsError, AxisSpecError, ReferenceDataError) as err:
        print(f"lftf-export-dataset: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(list(path.rglob('*.*')))} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
