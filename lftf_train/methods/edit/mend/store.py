"""Trained MEND editors in the lftf cache, keyed by the model's weights and the settings
that decide the training, so that a report or a second edit run does not train again."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from lftf_tasks.outputs import remove_stale_temporaries, temporary_prefix
from lftf_train.models import cache_root

EDITOR_FILE = "mend_editor.safetensors"
TRAINING_FILE = "mend_training.json"


def content_hash(model) -> str:
    """sha256 of every parameter and buffer (names, dtypes, shapes, bytes) of the model."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        digest.update(t.view(torch.uint8).numpy().data if t.numel() else b"")
    return digest.hexdigest()


def cache_key(model_hash: str, settings: dict) -> str:
    text = json.dumps({"model": model_hash, **settings}, sort_keys=True, default=str)
    return hashlib.sha256(f"mend-v2|{text}".encode()).hexdigest()[:16]


def cache_folder(key: str) -> Path:
    return cache_root() / "mend" / key


def save_editor(folder: Path, editor, record: dict) -> None:
    """The editor's weights and statistics, and its training record, written whole or not
    at all (a temporary folder renamed into place)."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(folder.parent)
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=temporary_prefix(folder.name)))
    try:
        write_editor(tmp, editor, record)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_editor(folder: Path, editor, record: dict) -> None:
    state = {k: v.detach().contiguous() for k, v in editor.state_dict().items()}
    save_file(state, str(folder / EDITOR_FILE), metadata={"names": json.dumps(editor.names)})
    (folder / TRAINING_FILE).write_text(json.dumps(record, indent=2) + "\n")


def load_editor(folder: Path, editor) -> dict:
    """Load weights saved by ``save_editor`` into ``editor``; its training record."""
    editor.load_state_dict(load_file(str(folder / EDITOR_FILE)))
    editor.eval()
    return json.loads((folder / TRAINING_FILE).read_text())
