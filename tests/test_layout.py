"""How the code is laid out: imports run one way, and every function of both packages fits
on a screen (generated text comes from templates, not long f-strings)."""

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
# The rule lftf_train is laid out by: a shared core (every module outside methods/ and TOP)
# that imports no method and nothing above it; one folder per method under methods/, which
# imports the core and its own modules, never another method's; and TOP, each of which may
# import what is listed before it (cli -> report -> pipeline -> api -> methods/* -> core ->
# lftf_tasks). No import cycles anywhere, so the order inside the core and inside a method
# follows from the imports themselves.
TOP = ["api", "pipeline", "report", "cli", "__main__"]


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
    """lftf_train/methods/dama/dama.py -> "methods.dama.dama"; a package's __init__.py or
    folder -> the package ("methods.dama")."""
    parts = path.relative_to(ROOT / "lftf_train").with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


TRAINER_FILES = [p for p in sorted((ROOT / "lftf_train").rglob("*.py")) if p.stem != "__init__"]
PACKAGES = [p.parent for p in (ROOT / "lftf_train").rglob("*/__init__.py")]
MODULES = {_key(p) for p in TRAINER_FILES} | {_key(p) for p in PACKAGES}
RULED_FILES = TRAINER_FILES + [p / "__init__.py" for p in PACKAGES]


def _module_of(imported: str) -> str | None:
    """The lftf_train module (file or package, longest prefix) an import names, or None."""
    parts = imported.split(".")[1:] if imported.startswith("lftf_train.") else []
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in MODULES:
            return ".".join(parts[:n])
    return None


def trainer_imports(path: Path) -> set[str]:
    """The lftf_train modules a trainer file imports: for `from package import module`, the
    module, not the package it sits in."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {_module_of(alias.name) for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module:
            found |= {_module_of(f"{node.module}.{alias.name}") for alias in node.names}
    return found - {None, _key(path)}


def place(module: str) -> tuple[str, str | int | None]:
    """("top", its index in TOP), ("method", its name) or ("core", None)."""
    if module in TOP:
        return "top", TOP.index(module)
    if module.startswith("methods.") or module == "methods":
        return "method", module.split(".")[1] if "." in module else None
    return "core", None


def allowed(importer: str, imported: str) -> bool:
    """Whether the layout rule lets module ``importer`` import module ``imported``."""
    (kind, which), (their_kind, theirs) = place(importer), place(imported)
    if their_kind == "core":
        return True
    if their_kind == "method":
        own = kind == "method" and (theirs == which or which is None)
        return kind == "top" or own
    return kind == "top" and theirs < which


def test_the_layout_rule():
    assert allowed("methods.dama.dama", "editing") and allowed("report", "methods.dama.method")
    assert allowed("methods.edit.rome", "methods.edit.values") and allowed("cli", "report")
    assert not allowed("methods.edit.mend.train", "methods.lftf.loss")  # another method
    assert not allowed("editing", "methods.edit.values")  # the core below every method
    assert not allowed("registry", "api") and not allowed("api", "pipeline")


@pytest.mark.parametrize("path", RULED_FILES, ids=_key)
def test_trainer_modules_import_by_the_layout_rule(path):
    for module in trainer_imports(path):
        assert allowed(_key(path), module), f"{_key(path)} imports {module}"


def test_trainer_modules_import_no_cycle():
    graph = {_key(p): trainer_imports(p) for p in RULED_FILES}
    done, stack = set(), []

    def visit(module):
        if module in stack:
            raise AssertionError(" -> ".join([*stack[stack.index(module) :], module]))
        if module in done or module not in graph:
            return
        stack.append(module)
        for imported in sorted(graph[module]):
            visit(imported)
        stack.pop()
        done.add(module)

    for module in sorted(graph):
        visit(module)


PLUGIN_FILES = sorted((ROOT / "lftf_tasks").rglob("*.py"))


@pytest.mark.parametrize(
    "path", TRAINER_FILES + PLUGIN_FILES, ids=lambda p: str(p.relative_to(ROOT))
)
def test_functions_fit_on_a_screen(path):
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef):
            lines = node.end_lineno - node.lineno + 1
            assert lines <= 60, f"{node.name} has {lines} lines"


def test_the_report_and_the_shared_figures_name_no_method():
    """What a method brings to the report lives in its folder (registry.ReportPart): the
    report's code, template and shared figures name no row and no method."""
    from lftf_tasks.axis import load_axis
    from lftf_train.registry import methods
    from lftf_train.report import plan

    labels = {row.label for row, method in plan(load_axis("gender")) if method is not None}
    names = {m.name for m in methods().values()} - {"lftf"}  # "lftf" is the package's name too
    assert {"FPFT", "DAMA", "MEMIT", "w/o he"} <= labels and {"pb", "dama", "edit"} <= names
    for rel in ("lftf_train/report.py", "lftf_train/plots.py", "lftf_train/templates/report.md.j2"):
        text = (ROOT / rel).read_text(encoding="utf-8")
        assert [label for label in labels if label in text] == [], rel
        assert [n for n in names if re.search(rf"\b{re.escape(n)}\b", text, re.I)] == [], rel
