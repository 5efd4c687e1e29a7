"""How the code is laid out: imports run one way, and every trainer function fits on a screen."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# lftf_train's modules by layer; a module may import only from layers below its own (and
# from lftf_tasks, the bottom): cli -> report -> pipeline -> api -> methods/* -> registry,
# records, locate, prefix, ... -> scoring/config/blocks/... -> lftf_tasks. A method's folder
# imports nothing from another method's but what is shared through the layers below.
LAYERS = [
    {"families"},
    {"config", "blocks", "data", "scoring", "tables", "plots", "models", "registry"},
    {"prefix", "locating", "adapters", "export", "capability", "evaluate", "records"},
    {"logits", "editing", "methods.lftf.config", "methods.pb.config", "methods.dama.config"},
    {"methods.edit.mend.settings", "methods.edit.mend.network", "methods.edit.mend.store"},
    {"methods.edit.prepared"},
    {"methods.lftf.loss", "methods.edit.mend.factors"},
    {"methods.lftf.model", "methods.lftf.train", "methods.edit.values", "methods.dama.dama"},
    {"methods.edit.mend.editor"},
    {"methods.lftf.method", "methods.dama.method", "methods.edit.rome", "methods.edit.mend.train"},
    {"methods.edit.memit", "methods.edit.mend.run"},
    {"methods.edit.editors"},
    {"methods.edit.config"},
    {"methods.edit.sequence"},
    {"methods.edit.method"},
    {"api"},
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


def _key(path: Path) -> str:
    """lftf_train/methods/dama/dama.py -> "methods.dama.dama"."""
    return ".".join(path.relative_to(ROOT / "lftf_train").with_suffix("").parts)


def _layer_of(module: str) -> int | None:
    """The layer of an imported lftf_train module (longest known prefix), or None."""
    parts = module.split(".")[1:]
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in LAYER:
            return LAYER[".".join(parts[:n])]
    return None


TRAINER_FILES = [p for p in sorted((ROOT / "lftf_train").rglob("*.py")) if p.stem != "__init__"]


@pytest.mark.parametrize("path", TRAINER_FILES, ids=_key)
def test_trainer_modules_import_only_from_lower_layers(path):
    assert _key(path) in LAYER, f"{_key(path)} needs a place in LAYERS"
    for module in imports(path):
        layer = _layer_of(module) if module.startswith("lftf_train.") else None
        if layer is not None:
            assert layer < LAYER[_key(path)], f"{_key(path)} imports {module}"


@pytest.mark.parametrize("path", TRAINER_FILES, ids=_key)
def test_trainer_functions_fit_on_a_screen(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= 60, f"{node.name} has {lines} lines"
