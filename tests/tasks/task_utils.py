"""Import a task folder's utils.py the way lm-eval does: by file path, not as a package."""

import importlib.util

from lftf_tasks import TASKS_DIR
from lftf_tasks.axis import parse_axis

# A user's axis: three groups, one of them with two words (P(group) sums them).
THREE_GROUPS = parse_axis(
    {
        "name": "toy",
        "subjects": ["a", "b"],
        "groups": [
            {"name": "x", "words": ["x1", "x2"], "hint": "X"},
            {"name": "y", "words": ["y"], "hint": "Y"},
            {"name": "z", "words": ["z"], "hint": "Z"},
        ],
        "templates": {"word": ["The {subject} is"]},
        "hint_templates": {"test": ["{hint}: the {subject} is"], "dev": ["{hint} {subject}"]},
    }
)


def load_task_utils(folder: str = "genbiaseval"):
    spec = importlib.util.spec_from_file_location(
        f"{folder}_utils", TASKS_DIR / folder / "utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
