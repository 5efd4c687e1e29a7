"""The checks lm-eval's own tests/test_tasks.py applies to a new task, on every task of ours."""

from itertools import islice

import pytest

from lftf_tasks import TASK_NAMES, task_manager
from lftf_tasks.axis import BUILTIN_AXES, load_axis
from lftf_tasks.generate import task_names

LIMIT = 10
AXES = [load_axis(name) for name in BUILTIN_AXES]
GROUPS = {name for a in AXES for name in (a.bias_task, f"{a.bias_task}_dev")}
AXIS_OF = {t: a for a in AXES for t in task_names(a)}
# The axes' tasks; WinoBias's and Winogender's are checked in test_transfer_tasks.py.
LEAF_TASKS = [t for t in TASK_NAMES if t in AXIS_OF and t not in GROUPS]


@pytest.fixture(scope="module")
def manager():
    """Our tasks only (indexing lm-eval's thousands of task files takes seconds)."""
    return task_manager(include_defaults=False)


@pytest.fixture(scope="module")
def tasks(manager):
    return manager.load(LEAF_TASKS)["tasks"]


def docs(task):
    source = task.test_docs() if task.has_test_docs() else task.validation_docs()
    return list(islice(source, LIMIT))


@pytest.mark.slow
def test_task_manager_knows_our_tasks_beside_lm_evals():
    manager = task_manager()
    for name in TASK_NAMES:
        assert name in manager.all_tasks
    assert "hellaswag" in manager.all_tasks and "mmlu" in manager.all_groups
    assert GROUPS | {"winobias", "winobias_dev"} <= set(manager.all_groups)


@pytest.mark.parametrize("name", LEAF_TASKS)
def test_upstream_new_task_checks(tasks, name):
    task = tasks[name]
    assert task.dataset is not None
    axis = AXIS_OF[name]
    is_bias = name.startswith(axis.bias_task)
    test_split = "dev" if name.endswith("_dev") else "test"
    # bias tasks have train/dev/test splits; hint tasks dev and test only (nothing to train on)
    assert task.has_training_docs() is is_bias
    assert task.has_validation_docs() is True and task.has_test_docs() is True
    assert task.config.training_split == ("train" if is_bias else None)
    assert (task.config.validation_split, task.config.test_split) == ("dev", test_split)
    if is_bias:
        assert {r["split"] for r in task.training_docs()} == {"train"}
    assert {r["split"] for r in task.validation_docs()} == {"dev"}
    assert task.should_decontaminate() is False
    rows = docs(task)
    assert len(rows) == LIMIT
    delimiter = task.config.target_delimiter
    assert delimiter == " "
    for doc in rows:
        text = task.doc_to_text(doc)
        assert isinstance(text, str) and not text[-1].isspace()
        assert task.doc_to_choice(doc) == AXIS_OF[name].choices
        assert isinstance(task.doc_to_target(doc), (int, str))
    requests = [task.construct_requests(doc=doc, ctx=task.doc_to_text(doc)) for doc in rows]
    assert len(requests) == LIMIT
    assert [r.arguments[1] for r in requests[0]] == [" " + w for w in AXIS_OF[name].choices]
    task.build_all_requests(rank=0, limit=LIMIT, world_size=1)
    assert len(task.instances) == len(AXIS_OF[name].choices) * LIMIT


def test_each_task_reads_its_own_split_and_scale(tasks):
    expected = {
        "genbiaseval_word": 308,
        "genbiaseval_phrase": 330,
        "genbiaseval_sentence": 306,
        "genbiaseval_word_dev": 152,
        "genbiaseval_phrase_dev": 157,
        "genbiaseval_sentence_dev": 162,
        "genhinteval": 786,
        "genhinteval_dev": 786,
        # religion: 262 x 3 prompts per scale split 40/20/40 %
        "relbiaseval_word": 786 - 314 - 157,
        "relbiaseval_word_dev": 157,
        "relhinteval": 786,
    }
    for name, size in expected.items():
        rows = list(tasks[name].test_docs())
        assert len(rows) == size, name
        assert {r["split"] for r in rows} == {"dev" if name.endswith("_dev") else "test"}
        if "biaseval_" in name:
            assert {r["scale"] for r in rows} == {name.split("_")[1]}


def test_group_is_a_size_weighted_aggregate(manager):
    group = manager.load(["genbiaseval"])["groups"]["genbiaseval"]
    assert group.child_names == ["genbiaseval_word", "genbiaseval_phrase", "genbiaseval_sentence"]
    aggregates = {a.metric: a for a in group.aggregate_metric_list}
    assert {"afgb", "pronoun_mass", "relative_gap"} <= set(aggregates)
    assert all(a.weight_by_size for a in aggregates.values())


@pytest.mark.parametrize("axis", AXES, ids=lambda a: a.name)
def test_readme_follows_lm_evals_new_task_template(axis):
    from lftf_tasks import TASKS_DIR

    readme = (TASKS_DIR / axis.bias_task / "README.md").read_text()
    for heading in (
        "### Paper",
        "### Citation",
        "#### Groups",
        "#### Tasks",
        "### Checklist",
        "### Changelog",
    ):
        assert heading in readme, heading
    for name in task_names(axis):
        assert f"`{name}`" in readme, name
