"""How the code is laid out: imports run one way, and the fine-tuning loop stays small."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# lftf_train's modules by layer; a module may import only from layers below its own (and
# from lftf_tasks, the bottom): cli -> report/pipeline -> train -> prefix/locate/adapters/...
# -> scoring/config/blocks/... -> lftf_tasks.
LAYERS = [
    {"config", "blocks", "data", "scoring", "tables", "plots", "models"},
    {"prefix", "locate", "adapters", "export", "capability", "evaluate"},
    {"train"},
    {"pipeline"},
    {"report"},
    {"cli"},
    {"__main__"},
]
LAYER = {name: i for i, names in enumerate(LAYERS) for name in names}


def imports(path: Path) -> set[str]:
    """Every module a file imports, at top level or inside functions."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found |= {f"{node.module}.{alias.name}" for alias in node.names}
    return found


def test_the_task_plugin_imports_nothing_from_the_trainer():
    files = sorted((ROOT / "lftf_tasks").rglob("*.py"))
    assert any(f.name == "utils.py" for f in files)  # the generated task hooks are included
    for path in files:
        trainer = sorted(m for m in imports(path) if m.split(".")[0] == "lftf_train")
        assert not trainer, f"{path.relative_to(ROOT)} imports {trainer}"


@pytest.mark.parametrize("path", sorted((ROOT / "lftf_train").glob("*.py")), ids=lambda p: p.name)
def test_trainer_modules_import_only_from_lower_layers(path):
    if path.stem == "__init__":
        return
    assert path.stem in LAYER, f"{path.name} needs a place in LAYERS"
    for module in imports(path):
        parts = module.split(".")
        if parts[0] == "lftf_train" and len(parts) > 1 and parts[1] in LAYER:
            assert LAYER[parts[1]] < LAYER[path.stem], f"{path.name} imports {module}"


def test_fine_tuning_functions_fit_on_a_screen():
    tree = ast.parse((ROOT / "lftf_train" / "train.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef):
            assert node.end_lineno - node.lineno + 1 <= 60, node.name
