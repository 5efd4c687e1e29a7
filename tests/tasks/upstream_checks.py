"""Run by test_upstream.py in a subprocess where lftf cannot be imported, as in
lm-evaluation-harness's own CI: index an exported task folder, apply the per-task checks of
lm-eval's tests/test_tasks.py to every task, and, given a model, evaluate the tasks.

    python upstream_checks.py TASK_FOLDER OUT.json [MODEL_PATH]
"""

import importlib.abc
import json
import sys
from itertools import islice


class _NoLftf(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("lftf_tasks", "lftf_train"):
            raise ModuleNotFoundError(f"No module named {name!r} (blocked: lftf is not installed)")
        return None


sys.meta_path.insert(0, _NoLftf())


def check_task(task, limit=10):
    """lm-eval's per-task checks: splits and docs exist, doc_to_* types, requests build."""
    assert task.dataset is not None
    assert task.has_test_docs() or task.has_validation_docs()
    for kind in ("training", "validation", "test"):
        if getattr(task, f"has_{kind}_docs")():
            assert task.config[f"{kind}_split"] in task.dataset, kind
    source = task.test_docs() if task.has_test_docs() else task.validation_docs()
    docs = list(islice(source, limit))
    assert len(docs) == limit
    for doc in docs:
        text = task.doc_to_text(doc)
        assert isinstance(text, str) and not text[-1].isspace()
        assert isinstance(task.doc_to_choice(doc), list)
        assert isinstance(task.doc_to_target(doc), (int, str))
    requests = [task.construct_requests(doc=doc, ctx=task.doc_to_text(doc)) for doc in docs]
    assert len(requests) == limit
    task.build_all_requests(rank=0, limit=limit, world_size=1)
    assert task.instances
    return len(task.instances)


def main():
    folder, out = sys.argv[1], sys.argv[2]
    try:
        import lftf_tasks  # noqa: F401
    except ModuleNotFoundError:
        pass
    else:
        raise SystemExit("lftf is importable; the checks would not show the folder stands alone")
    from lm_eval.tasks import TaskManager

    manager = TaskManager(include_path=folder, include_defaults=False)
    names = sorted(manager.all_subtasks)
    tasks = manager.load(names)["tasks"]
    report = {"tasks": {name: check_task(tasks[name]) for name in names}}
    if len(sys.argv) > 3:
        import lm_eval

        results = lm_eval.simple_evaluate(
            model="hf",
            model_args=f"pretrained={sys.argv[3]},dtype=float32",
            tasks=[n for n in manager.all_groups if not n.endswith("_dev")]
            + [n for n in names if "hint" in n and not n.endswith("_dev")],
            task_manager=manager,
            device="cpu",
            batch_size=64,
            log_samples=True,
        )
        report["results"] = results["results"]
        report["samples"] = {
            task: [{k: v for k, v in s.items() if k in ("doc", "afgb", "ub")} for s in rows]
            for task, rows in results["samples"].items()
        }
    with open(out, "w") as f:
        json.dump(report, f, default=str)


if __name__ == "__main__":
    main()
