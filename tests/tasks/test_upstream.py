"""The upstream export (lftf-export-upstream): a task folder lm-evaluation-harness can take
as it is, checked the way its own CI checks new tasks, with lftf out of reach."""

import ast
import importlib.metadata
import importlib.util
import json
import math
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from lftf_tasks import data_dir, upstream

from .task_utils import load_task_utils

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
# lm-evaluation-harness's ruff settings (its pyproject.toml: [tool.ruff.lint]).
LM_EVAL_RUFF = """\
[lint]
extend-select = ["I", "W605"]

[lint.isort]
lines-after-imports = 2
known-first-party = ["lm_eval"]

[lint.extend-per-file-ignores]
"__init__.py" = ["F401", "F402", "F403"]
"utils.py" = ["F401"]
"""


def export(out: Path, axis: str = "gender") -> tuple[Path, Path]:
    assert upstream.main([str(out), "--axis", axis, "--org", "test-org"]) == 0
    name = {"gender": "genbiaseval", "religion": "relbiaseval"}[axis]
    return out / "lm_eval" / "tasks" / name, out / "hub" / name


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    return export(tmp_path_factory.mktemp("upstream") / "out")


def served_locally(task_folder: Path, hub: Path, where: Path) -> Path:
    """A copy of the task folder whose dataset_path is the exported Hub folder (the test's
    stand-in for the Hub; nothing else changes)."""
    copy = where / "tasks" / task_folder.name
    shutil.copytree(task_folder, copy)
    template = next(copy.glob("_*_template_yaml"))
    text = template.read_text()
    assert "dataset_path: test-org/" in text
    template.write_text(text.replace(f"dataset_path: test-org/{hub.name}", f"dataset_path: {hub}"))
    return copy.parent


def run_checks(tasks: Path, out: Path, model: str | None = None) -> dict:
    """upstream_checks.py in a subprocess, with a datasets cache of its own: datasets keys a
    local folder's cache by its config, not its contents, so a cache from an older export
    (records without a newer field) would otherwise be read instead."""
    cmd = [sys.executable, str(HERE / "upstream_checks.py"), str(tasks), str(out)]
    env = {**os.environ, "HF_DATASETS_CACHE": str(out.parent / f"{out.stem}-datasets-cache")}
    proc = subprocess.run(cmd + ([model] if model else []), capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_utils_needs_only_the_standard_library(exported):
    folder, _ = exported
    text = (folder / "utils.py").read_text()
    imported = set()
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Import):
            imported |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            imported.add((node.module or "").split(".")[0])
    assert imported and imported <= sys.stdlib_module_names, imported
    assert "lftf_tasks" not in text and "__file__" not in text and "open(" not in text


def test_exported_utils_scores_and_fits_like_the_plugin(exported):
    """Per prompt and aggregated (the stereotype slopes and the labour fit), on random
    log-likelihoods for real records."""
    folder, _ = exported
    spec = importlib.util.spec_from_file_location("exported_utils", folder / "utils.py")
    theirs = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(theirs)
    ours = load_task_utils("genbiaseval")
    rng = random.Random(0)
    with (data_dir() / "genbiaseval" / "test.jsonl").open() as f:
        docs = [json.loads(line) for line in f][:200]
    items = {}
    for doc in docs:
        results = [(math.log(rng.uniform(0.01, 0.5)), False) for _ in range(2)]
        scores = theirs.process_bias_results(doc, results)
        assert scores == ours.process_bias_results(doc, results)
        for metric in ("a_s", "bls_slope", "bls_r"):
            items.setdefault(metric, []).append(scores[metric])
    for name in ("stereotype_slope", "bls_slope", "bls_r"):
        metric = "a_s" if name == "stereotype_slope" else name
        value = getattr(theirs, name)(items[metric])
        assert value == getattr(ours, name)(items[metric]) and not math.isnan(value)


def test_utils_passes_lm_evals_ruff_rules(exported, tmp_path):
    folder, _ = exported
    config = tmp_path / "ruff.toml"
    config.write_text(LM_EVAL_RUFF)
    proc = subprocess.run(
        [str(BIN / "ruff"), "check", "--config", str(config), str(folder / "utils.py")],
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_yamls_parse_with_lm_evals_loader_and_load_a_hub_dataset(exported):
    from lm_eval.tasks._yaml_loader import load_yaml

    folder, _ = exported
    files = sorted(folder.glob("*.yaml")) + sorted(folder.glob("_*_template_yaml"))
    assert len(files) == 11  # 2 groups, 6 scale tasks, 2 hint tasks, the template
    for path in files:
        config = load_yaml(path)
        assert "custom_dataset" not in config and "dataset_kwargs" not in config
    template = load_yaml(folder / "_genbiaseval_template_yaml")
    assert template["dataset_path"] == "test-org/genbiaseval"


def test_the_hub_card_names_the_configs_and_splits_the_yamls_ask_for(exported, tmp_path):
    import datasets
    from lm_eval.tasks._yaml_loader import load_yaml

    folder, hub = exported
    asked = {}
    for path in folder.glob("*.yaml"):
        config = load_yaml(path)
        if "dataset_name" in config:
            splits = {config.get(k) for k in ("training_split", "validation_split", "test_split")}
            asked.setdefault(config["dataset_name"], set()).update(splits - {None})
    assert asked == {
        "genbiaseval": {"train", "validation", "test"},
        "genhinteval": {"validation", "test"},
    }
    for name, splits in asked.items():
        loaded = datasets.load_dataset(str(hub), name, cache_dir=str(tmp_path / "c"))
        assert set(loaded) == splits, name


def test_lm_evals_task_checks_pass_with_lftf_out_of_reach(exported, tmp_path):
    folder, hub = exported
    report = run_checks(served_locally(folder, hub, tmp_path), tmp_path / "checks.json")
    assert set(report["tasks"]) == {
        "genbiaseval_word",
        "genbiaseval_phrase",
        "genbiaseval_sentence",
        "genbiaseval_word_dev",
        "genbiaseval_phrase_dev",
        "genbiaseval_sentence_dev",
        "genhinteval",
        "genhinteval_dev",
    }
    assert all(n == 20 for n in report["tasks"].values())  # 10 docs x 2 choices


def test_any_axis_exports_the_same_way(tmp_path):
    folder, hub = export(tmp_path / "out", axis="religion")
    report = run_checks(served_locally(folder, hub, tmp_path), tmp_path / "checks.json")
    assert "relhinteval" in report["tasks"] and report["tasks"]["relbiaseval_word"] == 40
    assert "Religious bias" in (folder / "README.md").read_text()
    assert (
        (tmp_path / "out" / "lm_eval" / "tasks" / "README_row.md")
        .read_text()
        .startswith("| [relbiaseval](relbiaseval/README.md) |")
    )


def test_readme_follows_lm_evals_template_with_a_real_homepage(exported):
    folder, _ = exported
    readme = (folder / "README.md").read_text()
    for heading in ("### Paper", "### Citation", "#### Groups", "#### Tasks", "### Checklist"):
        assert heading in readme
    assert "Homepage: https://huggingface.co/datasets/test-org/genbiaseval" in readme
    assert "License: MIT" in readme and "* v2.1:" in readme and "arxiv.org/abs/2505.15475" in readme


@pytest.mark.smollm2
def test_exported_tasks_score_like_the_plugin(exported, smollm2_path, smollm2_lm_eval, tmp_path):
    """On SmolLM2, with lftf out of reach: every prompt's afgb/ub and every aggregate equal
    the plugin's (the README example's run) within 1e-6."""
    folder, hub = exported
    tasks = served_locally(folder, hub, tmp_path)
    report = run_checks(tasks, tmp_path / "run.json", model=smollm2_path)
    plugin = smollm2_lm_eval
    for task, rows in report["samples"].items():
        theirs = {s["doc"]["prompt"]: s for s in plugin["samples"][task]}
        assert len(rows) == len(theirs) > 0
        key = "ub" if "hint" in task else "afgb"
        worst = max(abs(s[key] - theirs[s["doc"]["prompt"]][key]) for s in rows)
        assert worst < 1e-6, task
    for task in ("genbiaseval", "genhinteval", "genbiaseval_word"):
        ours, theirs = report["results"][task], plugin["results"]["results"][task]
        for metric, value in theirs.items():
            if isinstance(value, float) and "stderr" not in metric:
                assert ours[metric] == pytest.approx(value, abs=1e-6), (task, metric)


def test_the_plugin_entry_point_resolves_to_the_task_folder():
    (entry,) = [
        e for e in importlib.metadata.entry_points(group="lm_eval.tasks") if e.name == "lftf"
    ]
    folder = Path(entry.load()())
    assert (folder / "genbiaseval" / "genhinteval.yaml").exists()
    assert (folder / "relbiaseval" / "relhinteval.yaml").exists()
