"""Export GenBiasEval and GenHintEval as a Hugging Face Hub dataset folder.

    lftf-export-dataset OUT_DIR
    huggingface-cli upload ORG/genbiaseval OUT_DIR --repo-type dataset

The folder holds the data card (README.md with the Hub's config header), the JSONL splits,
the curated profession list and its licence, and an export.json saying what produced it.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path

from lftf_tasks import DATA_DIR, __version__, build
from lftf_tasks.axis import load_axis

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
    out_dir = Path(out_dir)
    if out_dir.exists() and not overwrite:
        raise FileExistsError(f"{out_dir} exists; pass --overwrite to replace it")
    stale = [
        rel for rel, text in build.render().items() if (build.PACKAGE_DIR / rel).read_text() != text
    ]
    if stale:
        raise RuntimeError(
            f"shipped data is out of date ({', '.join(stale)}); run python -m lftf_tasks.build"
        )
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}-", dir=out_dir.parent))
    try:
        for rel in EXPORTED:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(DATA_DIR / rel, tmp / rel)
        provenance = {
            "produced_by": f"lftf {__version__} (lftf-export-dataset)",
            "build_seed": load_axis("gender").seed,
            "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": EXPORTED,
        }
        (tmp / "export.json").write_text(json.dumps(provenance, indent=2) + "\n")
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out_dir


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
