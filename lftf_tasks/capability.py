"""lm-eval's own general-ability tasks (MMLU, GSM8K, ...) over local copies of their files.

lm-eval reads these benchmarks from the Hugging Face Hub. With ``LFTF_REFERENCE_DIR`` naming
a folder that holds ``capability/`` (laid out as ``lftf_tasks.reference`` pins it), lftf
adds a task folder, built on first use in the cache, in which each task is lm-eval's own
YAML (``include:`` of the installed file: prompt, metrics, filters, few-shot split) with one
change: its docs come from the verified local file, mapped to the Hub dataset's schema by a
``custom_dataset`` loader here. lm-eval lets a later folder override a task of the same name,
so ``--tasks mmlu`` then runs lm-eval's MMLU offline; without the folder lm-eval's Hub task
runs untouched.

Where a local file is a third party's reformat from which lm-eval's exact prompt cannot be
rebuilt (ARC and BoolQ from llm-foundry), the task is named ``<task>_local`` and says so.
HumanEval is not offered: lm-eval scores it with ``evaluate.load("code_eval")``, a metric
script that ``evaluate`` fetches from the Hub and cannot load offline.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from lftf_tasks import reference

LOCAL = "capability"  # the folder of the reference layout


@dataclass(frozen=True)
class Variant:
    """One task of lm-eval read from local files."""

    task: str  # our task's name: lm-eval's own where the prompts are exactly lm-eval's
    include: str  # lm-eval's YAML, relative to lm_eval/tasks
    docs: str  # what the loader reads: "mmlu/<subject>", "gsm8k", ...
    exact: bool = True  # the prompts equal lm-eval's from the Hub, character for character
    splits: dict = field(default_factory=dict)  # split settings the local copy cannot serve
    drop_tag: bool = False  # a renamed task must not join lm-eval's tag (e.g. ai2_arc)


def mmlu_subjects() -> list[str]:
    prefix, suffix = f"{LOCAL}/mmlu/test/", "_test.csv"
    return sorted(
        n[len(prefix) : -len(suffix)] for n in reference.CAPABILITY_SOURCES if n.startswith(prefix)
    )


NO_TRAIN = {"training_split": None}
NO_TRAIN_OR_VALIDATION = {"training_split": None, "validation_split": None}


def variants() -> list[Variant]:
    """Every local task, MMLU's 57 subjects in both of lm-eval's forms included."""
    out = []
    for subject in mmlu_subjects():
        docs = f"mmlu/{subject}"
        out.append(Variant(f"mmlu_{subject}", f"mmlu/default/mmlu_{subject}.yaml", docs))
        out.append(
            Variant(
                f"mmlu_{subject}_continuation",
                f"mmlu/continuation/mmlu_{subject}.yaml",
                docs,
            )
        )
    out += [
        Variant("gsm8k", "gsm8k/gsm8k.yaml", "gsm8k"),
        Variant("gsm_plus_mini", "gsm_plus/gsm_plus_mini.yaml", "gsm_plus"),
        Variant("piqa", "piqa/piqa.yaml", "piqa", splits=NO_TRAIN),
        Variant("winogrande", "winogrande/default.yaml", "winogrande", splits=NO_TRAIN),
        Variant(
            "arc_easy_local",
            "arc/arc_easy.yaml",
            "arc/arc_easy",
            exact=False,
            splits=NO_TRAIN_OR_VALIDATION,
            drop_tag=True,
        ),
        Variant(
            "arc_challenge_local",
            "arc/arc_challenge.yaml",
            "arc/arc_challenge",
            exact=False,
            splits=NO_TRAIN_OR_VALIDATION,
            drop_tag=True,
        ),
        Variant(
            "boolq_local",
            "super_glue/boolq/default.yaml",
            "boolq",
            exact=False,
            splits=NO_TRAIN,
            drop_tag=True,
        ),
    ]
    return out


# --- the docs, in the Hub dataset's schema -------------------------------------------------


def _file(name: str) -> Path:
    return reference.path(f"{LOCAL}/{name}")


def _jsonl(name: str) -> list[dict]:
    path = _file(name)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def _mmlu_split(subject: str, split: str) -> list[dict]:
    """cais/mmlu's schema: question, subject, choices (4), answer (0-3)."""
    with _file(f"mmlu/{split}/{subject}_{split}.csv").open(newline="", encoding="utf-8") as f:
        return [
            {
                "question": row["question"],
                "subject": subject,
                "choices": [row[f"choice{i}"] for i in range(4)],
                "answer": int(row["answer"]),
            }
            for row in csv.DictReader(f)
        ]


def _arc(rows: list[dict]) -> list[dict]:
    """allenai/ai2_arc's schema from llm-foundry's {query, choices, gold}: the letter labels
    and ids are not in the file (A, B, ... and the line number stand in)."""
    letters = "ABCDEFGH"
    prefix = "Question: "
    out = []
    for i, row in enumerate(rows):
        if not row["query"].startswith(prefix):
            raise ValueError(f"ARC line {i + 1}: query does not start with {prefix!r}")
        labels = list(letters[: len(row["choices"])])
        out.append(
            {
                "id": str(i),
                "question": row["query"][len(prefix) :],
                "choices": {"text": row["choices"], "label": labels},
                "answerKey": labels[row["gold"]],
            }
        )
    return out


def _boolq(rows: list[dict]) -> list[dict]:
    """super_glue/boolq's schema from llm-foundry's "Passage: {p}\\nQuestion: {q}?" (the
    passages carry no title, which SuperGLUE's do)."""
    out = []
    for i, row in enumerate(rows):
        passage, question = row["query"].removeprefix("Passage: ").split("\nQuestion: ", 1)
        out.append(
            {
                "question": question.removesuffix("?"),
                "passage": passage,
                "idx": i,
                "label": row["gold"],
            }
        )
    return out


def _winogrande(rows: list[dict]) -> list[dict]:
    """allenai/winogrande's schema rebuilt from llm-foundry's {context_options,
    continuation, gold}, which are exactly lm-eval's doc_to_choice, doc_to_target and
    doc_to_text: the blank goes where the two options' texts part, so lm-eval's own
    functions give back those strings character for character."""
    out = []
    for row in rows:
        first, second = row["context_options"]
        common = 0
        while common < min(len(first), len(second)) and first[common] == second[common]:
            common += 1
        out.append(
            {
                "sentence": first[:common] + "_ " + row["continuation"],
                "option1": first[common:],
                "option2": second[common:],
                "answer": str(row["gold"] + 1),
            }
        )
    return out


def _piqa() -> list[dict]:
    labels = _file("piqa/valid-labels.lst").read_text(encoding="utf-8").split()
    rows = _jsonl("piqa/valid.jsonl")
    if len(labels) != len(rows):
        raise ValueError(f"PIQA: {len(rows)} items but {len(labels)} labels")
    return [{**row, "label": int(label)} for row, label in zip(rows, labels, strict=True)]


def splits(docs: str) -> dict[str, list[dict]]:
    """{split: records in the Hub schema} for what a variant reads."""
    if docs.startswith("mmlu/"):
        subject = docs.split("/", 1)[1]
        return {s: _mmlu_split(subject, s) for s in ("test", "dev")}
    if docs == "gsm8k":
        return {s: _jsonl(f"gsm8k/{s}.jsonl") for s in ("test", "train")}
    if docs == "gsm_plus":
        return {"testmini": _jsonl("gsm_plus/gsmplus_testmini.jsonl")}
    if docs == "piqa":
        return {"validation": _piqa()}
    if docs == "winogrande":
        return {"validation": _winogrande(_jsonl("winogrande/winogrande.jsonl"))}
    if docs.startswith("arc/"):
        return {"test": _arc(_jsonl(f"{docs}.jsonl"))}
    if docs == "boolq":
        return {"validation": _boolq(_jsonl("boolq/boolq.jsonl"))}
    raise KeyError(f"no local copy of {docs!r}")


def load_docs(lftf_docs: str, **_metadata):
    """lm-eval's ``custom_dataset``: a DatasetDict of the local records (it is also handed
    the task's metadata, which the docs do not depend on)."""
    import datasets

    return datasets.DatasetDict(
        {split: datasets.Dataset.from_list(rows) for split, rows in splits(lftf_docs).items()}
    )


# --- the task folder ----------------------------------------------------------------------


def available() -> bool:
    """Whether the local tasks replace lm-eval's: ``LFTF_REFERENCE_DIR`` holds capability/."""
    folder = reference.reference_dir()
    return folder is not None and (folder / LOCAL).is_dir()


def _yaml(variant: Variant, lm_eval_tasks: Path) -> str:
    lines = [
        "# Generated by lftf_tasks.capability: lm-eval's own task, docs from a local file.",
        f"include: {json.dumps(str(lm_eval_tasks / variant.include))}",
        f"task: {variant.task}",
        f"dataset_path: lftf_local/{variant.docs}",
        "custom_dataset: !function utils.load_docs",
        f"dataset_kwargs: {{lftf_docs: {variant.docs}}}",
    ]
    lines += [f"{key}: null" for key in variant.splits]
    if variant.drop_tag:
        lines.append("tag: []")
    return "\n".join(lines) + "\n"


UTILS = '''"""Generated by lftf_tasks.capability; do not edit."""

from lftf_tasks.capability import load_docs  # noqa: F401
'''


def render() -> dict[str, str]:
    """{file name: text} of the task folder for the installed lm-eval."""
    import lm_eval

    tasks = Path(lm_eval.__file__).parent / "tasks"
    files = {f"{v.task}.yaml": _yaml(v, tasks) for v in variants()}
    files["utils.py"] = UTILS
    files["README.md"] = readme()
    return files


def readme() -> str:
    """The folder's README: which task reads which file, and which prompts are exact."""
    from importlib.metadata import version

    from lftf_tasks.outputs import render_template

    def source(v: Variant) -> str:
        name = next(n for n in reference.CAPABILITY_SOURCES if f"/{v.docs.split('/')[0]}/" in n)
        src = reference.CAPABILITY_SOURCES[name]
        return f"{src.repo}@{src.commit[:7]}"

    first = "abstract_algebra"  # one line stands for the 57 subjects of each MMLU form
    rows = [
        {
            "task": v.task.replace(first, "<subject>"),
            "include": v.include.replace(first, "<subject>"),
            "source": source(v),
            "prompts": "exact" if v.exact else "lm-eval's shape over a reformat: `_local`",
        }
        for v in variants()
        if not v.task.startswith("mmlu_") or first in v.task
    ]
    no_split = ", ".join(f"{v.task}: {', '.join(v.splits)}" for v in variants() if v.splits)
    return render_template(
        Path(__file__).with_name("templates") / "capability_README.md.j2",
        rows=rows,
        no_split=no_split,
        version=version("lftf"),
        lm_eval_version=version("lm_eval"),
    )


def task_folder() -> Path:
    """The task folder in the cache (``$LFTF_CACHE/capability/<hash>``), written once per
    lm-eval installation and lftf version, atomically."""
    from lftf_tasks.outputs import atomic_output_dir
    from lftf_tasks.paths import cache_root

    files = render()
    key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_root() / "capability" / key
    if not folder.is_dir():
        folder.parent.mkdir(parents=True, exist_ok=True)
        try:
            with atomic_output_dir(folder) as tmp:
                for name, text in files.items():
                    (tmp / name).write_text(text, encoding="utf-8")
        except FileExistsError:  # another process wrote the same folder first
            pass
    return folder


def sources_for(tasks: list[str]) -> list[str]:
    """The reference files the named tasks (or groups: mmlu, mmlu_stem, ...) read."""
    by_task = {v.task: v.docs.split("/")[0] for v in variants()}
    wanted = {"mmlu" if name.startswith("mmlu") else by_task.get(name) for name in tasks}
    return [n for n in reference.CAPABILITY_SOURCES if n.split("/")[1] in wanted]
