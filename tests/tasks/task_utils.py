"""Import a task folder's utils.py the way lm-eval does: by file path, not as a package."""

import importlib.util

from lftf_tasks import TASKS_DIR


def load_task_utils(folder: str = "genbiaseval"):
    spec = importlib.util.spec_from_file_location(
        f"{folder}_utils", TASKS_DIR / folder / "utils.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
