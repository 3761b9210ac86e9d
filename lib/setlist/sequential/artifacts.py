"""The sequential model's files: what the registry stores per version and every reader loads.

A model folder holds ``state.pt`` (the PyTorch state dict), ``model.json`` (the architecture and
the training settings) and ``vocabulary.parquet`` (track_id -> item_index). The vocabulary
travels with the weights: a day's catalogue is mapped through it, never re-numbered.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

STATE_FILE, META_FILE, VOCABULARY_FILE = "state.pt", "model.json", "vocabulary.parquet"


@dataclass(frozen=True)
class SequentialModelFiles:
    key: str                       # "name/version": caches a loaded model per worker
    architecture: dict[str, Any]
    state: bytes
    vocabulary: pd.DataFrame       # track_id, item_index
    settings: dict[str, Any]


def save_model_files(folder: str | Path, architecture: dict, state: bytes, vocabulary: pd.DataFrame,
                     settings: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_bytes(state)
    (folder / META_FILE).write_text(json.dumps({"architecture": architecture, "settings": settings}, indent=1))
    vocabulary[["track_id", "item_index"]].to_parquet(folder / VOCABULARY_FILE, index=False)
    return folder


def load_model_files(folder: str | Path, key: str) -> SequentialModelFiles:
    folder = Path(folder)
    missing = [name for name in (STATE_FILE, META_FILE, VOCABULARY_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"sequential model {key}: {', '.join(missing)} missing in {folder}")
    meta = json.loads((folder / META_FILE).read_text())
    return SequentialModelFiles(key=key, architecture=meta["architecture"], state=(folder / STATE_FILE).read_bytes(),
                                vocabulary=pd.read_parquet(folder / VOCABULARY_FILE), settings=meta["settings"])
