"""lm-eval's own general tasks over the local published files (lftf_tasks.capability): the
prompts are lm-eval's, the counts the published ones, a damaged file is refused."""

from __future__ import annotations

import csv
import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import datasets
import lm_eval
import pytest
from lm_eval.tasks import TaskManager
from lm_eval.tasks._yaml_loader import load_yaml

from lftf_tasks import capability, include_paths, reference

REFERENCE = Path(os.environ.get("LFTF_REFERENCE_DIR", "../shared/reference")).resolve()
CAP = REFERENCE / "capability"
LM_EVAL_TASKS = Path(lm_eval.__file__).parent / "tasks"
FIRST = 5  # docs compared per task


@pytest.fixture(scope="module")
def local_tasks(tmp_path_factory):
    """Our variants, loaded by name from the generated folder (lm-eval's index not needed)."""
    with pytest.MonkeyPatch.context() as env:
        env.setenv("LFTF_REFERENCE_DIR", str(REFERENCE))
        env.setenv("LFTF_CACHE", str(tmp_path_factory.mktemp("cache")))
        folder = capability.task_folder()
        manager = TaskManager(include_path=[str(folder)], include_defaults=False)
        names = [
            *(f"mmlu_{s}" for s in ("anatomy", "professional_law", "high_school_mathematics")),
            *(
                f"mmlu_{s}_continuation"
                for s in ("anatomy", "professional_law", "high_school_mathematics")
            ),
            "gsm8k",
            "gsm_plus_mini",
            "piqa",
            "winogrande",
            "arc_easy_local",
            "arc_challenge_local",
            "boolq_local",
        ]
        tasks = manager.load(names)["tasks"]  # docs are read here, while the settings hold
    return tasks


def lm_evals_own(include: str, splits: dict[str, list[dict]]):
    """lm-eval's own task from its installed YAML, over records in the Hub schema."""
    config = load_yaml(LM_EVAL_TASKS / include, resolve_func=True)
    config["task"] = "reference_" + config["task"]
    config.pop("tag", None)
    config["custom_dataset"] = lambda **_: datasets.DatasetDict(
        {s: datasets.Dataset.from_list(rows) for s, rows in splits.items()}
    )
    return TaskManager(include_defaults=False).load([config])["tasks"][config["task"]]


def prompts(task, n_shot: int = 0) -> list[tuple]:
    docs = list(task.eval_docs)[:FIRST]
    out = []
    for doc in docs:
        choices = task.doc_to_choice(doc) if task.OUTPUT_TYPE == "multiple_choice" else None
        out.append((task.fewshot_context(doc, n_shot), choices, task.doc_to_target(doc)))
    return out


def hub_mmlu(subject: str, split: str) -> list[dict]:
    with open(CAP / "mmlu" / split / f"{subject}_{split}.csv", newline="") as f:
        rows = list(csv.reader(f))[1:]
    return [
        {"question": r[0], "subject": subject, "choices": r[1:5], "answer": int(r[5])} for r in rows
    ]


def jsonl(path: Path) -> list[dict]:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt") as f:
        return [json.loads(line) for line in f if line.strip()]


@pytest.mark.parametrize("subject", ["anatomy", "professional_law", "high_school_mathematics"])
@pytest.mark.parametrize("form, n_shot", [("default", 0), ("default", 5), ("continuation", 0)])
def test_mmlu_prompts_are_lm_evals_own(local_tasks, subject, form, n_shot):
    name = f"mmlu_{subject}" + ("_continuation" if form == "continuation" else "")
    hub = {s: hub_mmlu(subject, s) for s in ("test", "dev")}
    own = lm_evals_own(f"mmlu/{form}/mmlu_{subject}.yaml", hub)
    ours = local_tasks[name]
    assert prompts(ours, n_shot) == prompts(own, n_shot)
    assert ours.config.dataset_path == f"lftf_local/mmlu/{subject}"


def test_gsm8k_gsm_plus_and_piqa_prompts_are_lm_evals_own(local_tasks):
    gsm8k = {s: jsonl(CAP / "gsm8k" / f"{s}.jsonl") for s in ("test", "train")}
    own = lm_evals_own("gsm8k/gsm8k.yaml", gsm8k)
    assert prompts(local_tasks["gsm8k"]) == prompts(own)
    # its 5 shots are drawn at random from the same train split, in the same order
    assert list(local_tasks["gsm8k"].fewshot_docs()) == list(own.fewshot_docs())
    plus = {"testmini": jsonl(CAP / "gsm_plus" / "gsmplus_testmini.jsonl")}
    own = lm_evals_own("gsm_plus/gsm_plus_mini.yaml", plus)
    assert prompts(local_tasks["gsm_plus_mini"]) == prompts(own)
    labels = (CAP / "piqa" / "valid-labels.lst").read_text().split()
    piqa = [{**r, "label": int(y)} for r, y in zip(jsonl(CAP / "piqa" / "valid.jsonl"), labels)]
    own = lm_evals_own("piqa/piqa.yaml", {"validation": piqa, "train": piqa[:1]})
    assert prompts(local_tasks["piqa"]) == prompts(own)


def test_winogrande_requests_are_the_files_own_strings(local_tasks):
    """llm-foundry's fields are lm-eval's doc_to_choice/target/text outputs: the rebuilt docs
    give them back through lm-eval's own functions, character for character."""
    task = local_tasks["winogrande"]
    rows = jsonl(CAP / "winogrande" / "winogrande.jsonl")
    docs = list(task.eval_docs)
    assert len(docs) == len(rows) == 1267
    for doc, row in zip(docs, rows):
        assert task.doc_to_choice(doc) == row["context_options"]
        assert task.doc_to_target(doc) == row["continuation"]
        assert task.doc_to_text(doc) == row["gold"]


def test_reformatted_copies_are_named_local_and_keep_lm_evals_prompt_shape(local_tasks):
    arc = local_tasks["arc_easy_local"]
    for doc, row in zip(list(arc.eval_docs)[:FIRST], jsonl(CAP / "arc" / "arc_easy.jsonl")):
        assert arc.fewshot_context(doc, 0) == row["query"] + "\nAnswer:"
        assert arc.doc_to_choice(doc) == row["choices"]
        assert arc.doc_to_target(doc) == row["gold"]
    boolq = local_tasks["boolq_local"]
    for doc, row in zip(list(boolq.eval_docs)[:FIRST], jsonl(CAP / "boolq" / "boolq.jsonl")):
        assert boolq.fewshot_context(doc, 0) == row["query"].removeprefix("Passage: ") + "\nAnswer:"
        assert boolq.doc_to_target(doc) == row["gold"]
    inexact = {v.task for v in capability.variants() if not v.exact}
    assert inexact == {"arc_easy_local", "arc_challenge_local", "boolq_local"}
    assert all(v.task.endswith("_local") == (not v.exact) for v in capability.variants())
    # renamed tasks join none of lm-eval's tags (ai2_arc would mix them with the Hub's)
    assert not getattr(arc.config, "tag", None)


@pytest.mark.parametrize(
    "docs, counts",
    [
        ("mmlu", {"test": 14042, "dev": 285}),
        ("gsm8k", {"test": 1319, "train": 7473}),
        ("gsm_plus", {"testmini": 2400}),
        ("piqa", {"validation": 1838}),
        ("winogrande", {"validation": 1267}),
        ("arc/arc_easy", {"test": 2376}),
        ("arc/arc_challenge", {"test": 1172}),
        ("boolq", {"validation": 3270}),
    ],
)
def test_counts_per_split_are_the_published_ones(monkeypatch, docs, counts):
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(REFERENCE))
    if docs == "mmlu":
        subjects = capability.mmlu_subjects()
        assert len(subjects) == 57
        per = [capability.splits(f"mmlu/{s}") for s in subjects]
        found = {split: sum(len(p[split]) for p in per) for split in counts}
    else:
        found = {split: len(rows) for split, rows in capability.splits(docs).items()}
    assert found == counts


def test_local_tasks_only_with_the_reference_folder(monkeypatch, tmp_path):
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("LFTF_REFERENCE_DIR", raising=False)
    assert len(include_paths()) == 1  # lm-eval's Hub tasks run untouched
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(REFERENCE))
    ours, local = include_paths()
    yaml = (Path(local) / "mmlu_anatomy.yaml").read_text()
    assert f'include: "{LM_EVAL_TASKS / "mmlu/default/mmlu_anatomy.yaml"}"' in yaml


def test_every_capability_file_is_pinned(monkeypatch):
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(REFERENCE))
    on_disk = {
        f"capability/{p.relative_to(CAP)}"
        for p in CAP.rglob("*")
        if p.is_file() and p.relative_to(CAP) != Path("README.md")
    }
    assert set(reference.CAPABILITY_SOURCES) == on_disk
    for source in reference.CAPABILITY_SOURCES.values():
        assert len(source.commit) == 40 and source.licence in reference.CAPABILITY_SOURCES
    assert len(reference.fetch(list(reference.CAPABILITY_SOURCES))) == len(on_disk)


def lftf_eval(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    code = "from lftf_tasks.cli import lftf_eval; lftf_eval()"
    return subprocess.run(
        [sys.executable, "-c", code, *argv], env=env, capture_output=True, text=True, timeout=900
    )


def test_a_damaged_local_file_is_refused_before_lm_eval_starts(tmp_path):
    copy = tmp_path / "reference"
    shutil.copytree(REFERENCE, copy)
    damaged = copy / "capability/mmlu/test/anatomy_test.csv"
    damaged.chmod(0o644)
    damaged.write_text(damaged.read_text().replace("facial", "fascial", 1))
    env = {**os.environ, "LFTF_REFERENCE_DIR": str(copy), "LFTF_CACHE": str(tmp_path / "c")}
    argv = ["--model", "hf", "--model_args", "pretrained=/no/model", "--tasks", "mmlu_anatomy"]
    run = lftf_eval(argv, env)
    assert run.returncode != 0
    assert "capability/mmlu/test/anatomy_test.csv" in run.stderr and "not used" in run.stderr
    assert "Traceback" not in run.stderr and "/no/model" not in run.stderr


@pytest.mark.smollm2
def test_lftf_eval_runs_mmlu_offline_on_smollm2(smollm2_path, tmp_path):
    """The issue's proof: both MMLU forms through lftf-eval, no hub, an accuracy with a
    standard error each."""
    env = {**os.environ, "LFTF_REFERENCE_DIR": str(REFERENCE), "HF_HUB_OFFLINE": "1"}
    env["HF_DATASETS_OFFLINE"] = "1"
    argv = ["--model", "hf", "--model_args", f"pretrained={smollm2_path},dtype=float32"]
    argv += ["--tasks", "mmlu,mmlu_continuation", "--limit", "2", "--batch_size", "16"]
    argv += ["--output_path", str(tmp_path / "out")]
    run = lftf_eval(argv, env)
    assert run.returncode == 0, run.stderr[-3000:]
    (results,) = (tmp_path / "out").glob("*/results_*.json")
    data = json.loads(results.read_text())
    for task in ("mmlu", "mmlu_continuation"):
        scores = data["results"][task]
        assert 0 <= scores["acc,none"] <= 1 and 0 < scores["acc_stderr,none"] < 0.5
    assert data["n-samples"]["mmlu_anatomy"] == {"original": 135, "effective": 2}
    assert data["configs"]["mmlu_anatomy"]["dataset_path"] == "lftf_local/mmlu/anatomy"


def test_the_folder_s_readme_says_which_prompts_are_lm_evals_own(monkeypatch, tmp_path):
    monkeypatch.setenv("LFTF_REFERENCE_DIR", str(REFERENCE))
    monkeypatch.setenv("LFTF_CACHE", str(tmp_path))
    lines = (capability.task_folder() / "README.md").read_text().splitlines()
    for variant in capability.variants():
        if variant.task.startswith("mmlu_"):
            continue
        (line,) = [x for x in lines if x.startswith(f"| `{variant.task}` |")]
        assert line.endswith("| exact |") == variant.exact and variant.include in line
    assert any(x.startswith("| `mmlu_<subject>_continuation` |") for x in lines)
    assert "HumanEval is not offered" in "\n".join(lines)
