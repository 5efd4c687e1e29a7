"""The method registry, in the shape of PEFT's ``register_peft_method``: a debiasing method
is a name, a config dataclass and an ``apply`` function, registered once from its folder's
``__init__.py`` (``lftf_train/methods/<name>/``). The CLI's sub-commands, ``debias()``, the
report's rows and the run records are all built from here; nothing else lists methods.

``apply(model, tokenizer, config, context) -> Adapted`` adapts ``model`` (in place) and
returns what changed; ``context`` (a ``Context``) carries what a caller shares across
methods (the log, a locate report, a prefix cache).

Methods of other packages register themselves when imported, or through the entry-point
group ``lftf.methods`` (each entry a module to import), found the first time the registry is
read.
"""

from __future__ import annotations

import dataclasses
import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

ENTRY_POINTS = "lftf.methods"


@dataclass(frozen=True)
class ReportRow:
    """One row of ``lftf-train report``: run ``method`` with the report's base config and
    ``overrides(options, axis)`` (a dict, or a function of the method's report options, see
    ``ReportPart``, and the axis); ``table`` 'main' or 'ablation'; ``not_run``: the reason a
    row is listed without running. ``reference``: the row the ablations, the case study and
    the per-subject figure set beside the original (one row of all methods'); ``in_figures``:
    drawn beside the original in the report's transfer figure."""

    label: str
    overrides: dict | Callable[[Any, Any], dict] = field(default_factory=dict)
    table: str = "main"
    not_run: str | None = None
    reference: bool = False
    in_figures: bool = False

    def config_overrides(self, options, axis) -> dict:
        return self.overrides(options, axis) if callable(self.overrides) else self.overrides


@dataclass(frozen=True)
class ReportPart:
    """What a method brings to ``lftf-train report`` besides its rows, so that the report
    itself names no method. ``options``: a dataclass of ``config.option`` fields, the
    method's own `report` flags, whose instance its rows' overrides receive (a ``check(axis)``
    method, if it has one, runs before any row); ``texts``: report.md's prose about its rows,
    by section ('main', 'ablation'), each a Jinja template (a file or its text) rendered with
    ``rows`` (its rows that ran, by label), ``options``, ``axis``, ``info`` (the report's
    record) and ``span`` (blocks as '19-27'); ``figures(rows, folder, info, footer)``: draws
    its figures into the report folder (``rows`` as for the texts)."""

    options: type | None = None
    texts: dict[str, Any] = field(default_factory=dict)
    figures: Callable | None = None


@dataclass(frozen=True)
class Method:
    name: str  # the CLI sub-command and the record's "method"
    config_cls: type
    apply: Callable  # (model, tokenizer, config, context) -> Adapted
    help: str  # one line for `lftf-train --help`
    rows: tuple[ReportRow, ...] = ()  # its rows in `lftf-train report`
    # ((label, axis) -> rows): rows whose labels depend on the axis, e.g. "w/o <group>"
    axis_rows: Callable | None = None
    aliases: tuple[str, ...] = ()  # other sub-command names
    report: ReportPart = ReportPart()  # its report options, prose and figures

    def report_rows(self, axis) -> list[ReportRow]:
        return [*self.rows, *(self.axis_rows(axis) if self.axis_rows else [])]


@dataclass
class Adapted:
    """What a method's ``apply`` returns: the adapted model (a PeftModel whose adapter holds
    what changed, or the unchanged model for a prompt-only method), its details for the run
    record, and what the report and the CLI say about it."""

    model: Any
    details: dict  # the record's "result": everything method-specific
    settings: str  # what ran, in a few words (the report's "settings" column)
    label: str | None = None  # the report's row label, when it names its settings
    summary: str = ""  # one line the CLI prints
    row: dict = field(default_factory=dict)  # scalars for the report row (cost, efficacy)
    system_instruction: str | None = None  # put before every prompt (lm-eval's)
    artifacts: dict[str, Callable] = field(default_factory=dict)  # file name -> writer(path)


@dataclass
class Context:
    """What a caller shares with every method it applies: how to log, whether to draw
    progress bars, the path or id the model was loaded from (records, lm-eval), and work
    done once for several methods (a locate report for blocks='auto'; the prefix cache the
    first LFTF run builds). Share a context only across copies of one base model: the
    cached states belong to its weights."""

    resolved_model: str = ""
    log: Callable = print
    show_progress: bool = True
    located: dict | None = None
    prefix_cache: Any = None
    accelerator: Any = None


_METHODS: dict[str, Method] = {}
_loaded = False


def register_method(
    name: str,
    config_cls: type,
    apply: Callable,
    help: str,
    rows: tuple[ReportRow, ...] = (),
    axis_rows: Callable | None = None,
    aliases: tuple[str, ...] = (),
    report: ReportPart | None = None,
) -> Method:
    """Register a debiasing method (PEFT's ``register_peft_method``); returns it."""
    others = [m for m in _METHODS.values() if m.name != name]
    clash = sorted({n for m in others for n in (m.name, *m.aliases)} & {name, *aliases})
    if clash:
        raise ValueError(f"method name(s) {clash} are already registered")
    if any(m.config_cls is config_cls for m in others):
        raise ValueError(f"{config_cls.__name__} is already the config of another method")
    report = report or ReportPart()
    flags = sorted(
        set(_option_names(report)) & {f for m in others for f in _option_names(m.report)}
    )
    if flags:
        raise ValueError(f"report option(s) {flags} are already another method's")
    method = Method(name, config_cls, apply, help, tuple(rows), axis_rows, tuple(aliases), report)
    _METHODS[name] = method
    return method


def _option_names(part: ReportPart) -> list[str]:
    return [f.name for f in dataclasses.fields(part.options)] if part.options else []


def unregister_method(name: str) -> None:
    _METHODS.pop(name, None)


def methods() -> dict[str, Method]:
    """Every registered method, built-ins first, in registration order."""
    global _loaded
    if not _loaded:
        _loaded = True
        importlib.import_module("lftf_train.methods")  # the built-ins register themselves
        for entry in entry_points(group=ENTRY_POINTS):
            importlib.import_module(entry.value)
    return dict(_METHODS)


def get_method(name: str) -> Method:
    found = {n: m for m in methods().values() for n in (m.name, *m.aliases)}
    if name not in found:
        raise ValueError(f"no method {name!r}; registered: {', '.join(methods())}")
    return found[name]


def method_for(config) -> Method:
    """The method whose config class ``config`` is."""
    for method in methods().values():
        if type(config) is method.config_cls:
            return method
    raise TypeError(
        f"{type(config).__name__} is not the config of a registered method "
        f"(registered: {', '.join(methods())}); register it with register_method"
    )
