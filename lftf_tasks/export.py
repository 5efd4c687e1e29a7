"""Export GenBiasEval and GenHintEval as a Hugging Face Hub dataset folder.

    lftf-export-dataset OUT_DIR
    huggingface-cli upload ORG/genbiaseval OUT_DIR --repo-type dataset

The folder holds the data card (README.md with the Hub's config header), the JSONL splits,
the curated profession list and its licence, and an export.json saying what produced it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

from lftf_tasks import build
from lftf_tasks.axis import load_axis
from lftf_tasks.outputs import atomic_output_dir, provenance, write_json
from lftf_tasks.paths import DATA_DIR, PACKAGE_DIR

EXPORTED = [
    "README.md",
    "professions.json",
    "LICENSE-professions",
    "genbiaseval/train.jsonl",
    "genbiaseval/dev.jsonl",
    "genbiaseval/test.jsonl",
    "genhinteval/dev.jsonl",
    "genhinteval/test.jsonl",
]


def export(out_dir: Path, overwrite: bool = False) -> Path:
    stale = [rel for rel, text in build.render().items() if (PACKAGE_DIR / rel).read_text() != text]
    if stale:
        raise RuntimeError(
            f"shipped data is out of date ({', '.join(stale)}); run python -m lftf_tasks.build"
        )
    with atomic_output_dir(out_dir, overwrite) as tmp:
        for rel in EXPORTED:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DATA_DIR / rel, tmp / rel)
        info = provenance(build_seed=load_axis("gender").seed, files=EXPORTED)
        write_json(tmp / "export.json", info)
    return Path(out_dir)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="lftf-export-dataset",
        description=__doc__.split("\n\n")[0],
        epilog="Upload with: huggingface-cli upload ORG/NAME OUT_DIR --repo-type dataset",
    )
    parser.add_argument("out_dir", type=Path, help="folder to create (must not exist)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing folder")
    args = parser.parse_args(argv)
    try:
        path = export(args.out_dir, overwrite=args.overwrite)
    except (FileExistsError, RuntimeError) as err:
        print(f"lftf-export-dataset: error: {err}", file=sys.stderr)
        return 2
    print(f"wrote {path} ({len(EXPORTED) + 1} files)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
