"""Build the data the tasks read, and the package's generated files, from the axis specs
and the published files they draw on.

    python -m lftf_tasks.build              # rewrite the package's generated files
    python -m lftf_tasks.build --check      # exit 1 if one differs from a fresh build
    python -m lftf_tasks.build --data-dir   # print the built data folder (built if needed)

Two outputs:

- **The data**: every built-in axis's prompts (GenBiasEval/GenHintEval, religion), the
  WinoBias pairs and Winogender prompts, their data cards, the curated professions and the
  licences of the files they come from. It is built from published files
  (``lftf_tasks.reference``), so it is not in the repository: ``data_dir()`` builds it on
  first use into the lftf cache and uses it only if every file has the sha256 recorded in
  ``lftf_tasks/data.sha256``, so every machine scores the same prompts.
- **The package's generated files**: the task folders under ``lftf_tasks/tasks/`` (yaml
  files, utils.py, the transfer README) and ``data.sha256`` itself. Only the specs, the
  axes' task READMEs and the code are written by hand.
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import sys
from pathlib import Path

from lftf_tasks import professions, reference
from lftf_tasks.axis import (
    BUILTIN_AXES,
    SPLITS,
    Axis,
    build_bias,
    build_hint,
    data_files,
    load_axis,
    load_professions,
    profession_names,
)
from lftf_tasks.generate import builtin_task_files
from lftf_tasks.outputs import atomic_output_dir, provenance, render_template, write_json
from lftf_tasks.paths import PACKAGE_DIR, cache_root
from lftf_tasks.transfer import files as transfer_files

CHECKSUMS = "data.sha256"  # in the package: the sha256 of every built data file
HUB_SPLITS = {"train": "train", "dev": "validation", "test": "test"}


def config_header(axis: Axis) -> str:
    """The card's YAML lines that declare one config per benchmark and its splits."""
    lines = ["configs:"]
    for task, splits in ((axis.bias_task, SPLITS), (axis.hint_task, ("dev", "test"))):
        lines += [f"- config_name: {task}", "  data_files:"]
        for split in splits:
            lines += [f"  - split: {HUB_SPLITS[split]}", f"    path: {task}/{split}.jsonl"]
    return "\n".join(lines) + "\n"


def data_card(
    axis, professions: dict, bias: list[dict], hint: list[dict], hint_dev: list[dict]
) -> str:
    """GenBiasEval's data card (the gender axis)."""
    kept = profession_names(professions)
    counts = {
        scale: [sum(r["scale"] == scale and r["split"] == s for r in bias) for s in SPLITS]
        for scale in axis.scales
    }
    totals = [sum(r["split"] == s for r in bias) for s in SPLITS]
    templates = "\n".join(
        f"| `{scale}_{t}` | {scale} | {template.format(subject='{profession}')} |"
        for scale, temps in axis.templates.items()
        for t, template in enumerate(temps, start=1)
    )
    hint_templates = "\n".join(
        f"| `{prefix}hint_{t}` | {split} | "
        f"{template.format(subject='{profession}', hint='{his/her}')} |"
        for split, prefix, templates in (
            ("test", "", axis.hint_templates["test"]),
            ("dev", "dev_", axis.hint_templates["dev"]),
        )
        for t, template in enumerate(templates, start=1)
    )
    removed = "\n".join(
        f"| {r['word'].replace('_', ' ')} | {r['definitional']} | {r['reason']} |"
        for r in professions["removed"]
    )
    count_rows = "\n".join(
        f"| {scale} | {c[0]} | {c[1]} | {c[2]} | {sum(c)} |" for scale, c in counts.items()
    )
    n_his = sum(r["hint"] == "his" for r in hint)
    n_bls = len({r["profession"] for r in bias if r.get("bls_pct_female") is not None})
    return render_template(
        Path(__file__).with_name("templates") / "genbiaseval_card.md.j2",
        seed=axis.seed,
        config_header=config_header(axis),
        templates=templates,
        hint_templates=hint_templates,
        removed=removed,
        count_rows=count_rows,
        totals=totals,
        n_total=sum(totals),
        n_bias=len(bias),
        n_hint=len(hint),
        n_his=n_his,
        n_her=len(hint) - n_his,
        n_hint_dev=len(hint_dev),
        n_kept=len(kept),
        n_no_bls=len(kept) - n_bls,
        n_removed=len(professions["removed"]),
    )


class BuildMismatchError(reference.ReferenceDataError):
    """A fresh build is not the one whose sha256 the package records."""


def render_all() -> dict[str, str]:
    """Every built file, as {"data/..." or "tasks/...": text}: the data (built into the
    lftf cache) and the task folders (in the package)."""
    found = reference.fetch()  # all at once: one error names every missing file
    files = {}
    for name in BUILTIN_AXES:
        axis = load_axis(name)
        files.update({f"data/{rel}": text for rel, text in data_files(axis).items()})
        folder = f"tasks/{axis.bias_task}"
        files.update({f"{folder}/{f}": t for f, t in builtin_task_files(name).items()})
    gender = load_axis("gender")
    bias = build_bias(gender)
    hint, hint_dev = build_hint(gender, "test"), build_hint(gender, "dev")
    files["data/README.md"] = data_card(gender, load_professions(), bias, hint, hint_dev)
    files["data/professions.json"] = professions.render(load_professions())
    files["data/LICENSE-professions"] = found[professions.LICENCE].read_text(encoding="utf-8")
    for benchmark in ("winobias", "winogender"):
        licence = found[f"{benchmark}/LICENSE"]
        files[f"data/{benchmark}/LICENSE"] = licence.read_text(encoding="utf-8")
    files.update(transfer_files.render())
    return files


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def checksums(data: dict[str, str]) -> str:
    """``sha256sum`` lines of the data files (``sha256sum -c`` checks a build folder)."""
    return "".join(f"{_sha256(text)}  {rel}\n" for rel, text in sorted(data.items()))


def render_data() -> dict[str, str]:
    """The built data, as {path relative to the data folder: text}."""
    return {rel[5:]: t for rel, t in render_all().items() if rel.startswith("data/")}


def render() -> dict[str, str]:
    """The package's generated files, as {path relative to lftf_tasks/: text}."""
    files = render_all()
    package = {rel: t for rel, t in files.items() if not rel.startswith("data/")}
    package[CHECKSUMS] = checksums({r[5:]: t for r, t in files.items() if r.startswith("data/")})
    return package


def recorded_text() -> str:
    """The package's data.sha256."""
    return (PACKAGE_DIR / CHECKSUMS).read_text(encoding="utf-8")


def recorded() -> dict[str, str]:
    """{data file: sha256} as the package records them."""
    lines = recorded_text().splitlines()
    return {rel: sha for sha, rel in (line.split("  ", 1) for line in lines)}


def _intact(folder: Path, expected: dict[str, str]) -> bool:
    """Whether ``folder`` holds exactly the recorded build."""
    marker = folder / CHECKSUMS
    return (
        marker.is_file()
        and marker.read_text(encoding="utf-8") == recorded_text()
        and all(
            (folder / rel).is_file() and reference.sha256_of(folder / rel) == sha
            for rel, sha in expected.items()
        )
    )


def _build_into(target: Path, expected: dict[str, str]) -> None:
    files = render_data()
    wrong = sorted(
        rel
        for rel in expected.keys() | files.keys()
        if _sha256(files.get(rel, "")) != expected.get(rel)
    )
    if wrong:
        raise BuildMismatchError(
            f"the data built here is not the build lftf_tasks/{CHECKSUMS} records "
            f"({', '.join(wrong)}); scores would not be comparable. If you changed a spec or the build on purpose, "
            "record the new build: python -m lftf_tasks.build"
        )
    print(f"lftf: building the task data into {target}", file=sys.stderr)
    try:
        with atomic_output_dir(target, overwrite=target.exists()) as tmp:
            for rel, text in files.items():
                (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
                (tmp / rel).write_bytes(text.encode("utf-8"))
            (tmp / CHECKSUMS).write_text(recorded_text(), encoding="utf-8")
            sources = {n: vars(s) for n, s in reference.SOURCES.items()}
            write_json(tmp / "build.json", provenance(sources=sources))
    except FileExistsError:  # another process built it meanwhile
        if not _intact(target, expected):
            raise


@functools.lru_cache(maxsize=4)
def _data_dir(root: str) -> Path:
    expected = recorded()
    key = hashlib.sha256(recorded_text().encode("utf-8")).hexdigest()[:12]
    target = Path(root) / "data" / key
    if not _intact(target, expected):
        _build_into(target, expected)
    return target


def data_dir() -> Path:
    """The built data folder, ``$LFTF_CACHE/data/<key of the recorded build>/``: built on
    first use from the verified published files, atomically (another process that builds
    it at the same time ends with the same folder), and checked file by file against the
    recorded sha256 once per process."""
    return _data_dir(str(cache_root()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m lftf_tasks.build",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=__doc__.split("\n\n", 2)[2],
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="compare a fresh build with the package's files and recorded sha256, write nothing",
    )
    parser.add_argument(
        "--data-dir",
        action="store_true",
        help="print the built data folder in the lftf cache (building it if needed)",
    )
    args = parser.parse_args(argv)
    try:
        if args.data_dir:
            print(data_dir())
            return 0
        files = render()
    except reference.ReferenceDataError as err:
        print(f"python -m lftf_tasks.build: error: {err}", file=sys.stderr)
        return 2
    stale = []
    for rel, text in files.items():
        path = PACKAGE_DIR / rel
        current = path.read_bytes() if path.exists() else None
        if current == text.encode("utf-8"):
            continue
        stale.append(rel)
        if not args.check:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8"))
    if args.check and stale:
        print("out of date: " + ", ".join(stale) + " (run: python -m lftf_tasks.build)")
        return 1
    print(("rewrote " + ", ".join(stale)) if stale else "all generated files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
