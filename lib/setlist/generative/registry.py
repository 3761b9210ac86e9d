"""The generative retriever's files and its place in the MLflow registry
(``candidates.generative.model_name``, the same ``tracking.champion_alias`` as the other models).

A version's folder holds ``state.pt`` (the PyTorch state dict), ``model.json`` (architecture and
training settings) and ``semantic_ids.parquet`` (track_id, item_index, codes, trained): the codes travel
with the weights, so a day's tracks are mapped through the model's own IDs, never re-coded;
``trained`` is false for a track with an ID but no training plays (cold start matches it by prefix).
"""
from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from setlist import tracking
from setlist.config import SetlistConfig

ARTIFACT_PATH = "generative_model"
STATE_FILE, META_FILE, IDS_FILE = "state.pt", "model.json", "semantic_ids.parquet"


@dataclass(frozen=True)
class GenerativeModelFiles:
    key: str                       # "name/version": caches a loaded model per worker
    architecture: dict[str, Any]
    state: bytes
    semantic_ids: pd.DataFrame     # track_id, item_index, codes, trained (one row per track, item_index = row)
    settings: dict[str, Any]

    def codes(self) -> np.ndarray:
        return np.stack(self.semantic_ids["codes"].to_numpy()).astype(np.int64)

    def untrained(self) -> np.ndarray:
        """[num_items] bool by item_index: tracks with an ID the decoder saw no play of."""
        return ~self.semantic_ids["trained"].to_numpy(dtype=bool)


def save_model_files(folder: str | Path, architecture: dict, state: bytes, semantic_ids: pd.DataFrame,
                     settings: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATE_FILE).write_bytes(state)
    (folder / META_FILE).write_text(json.dumps({"architecture": architecture, "settings": settings}, indent=1))
    semantic_ids[["track_id", "item_index", "codes", "trained"]].to_parquet(folder / IDS_FILE, index=False)
    return folder


def load_model_files(folder: str | Path, key: str) -> GenerativeModelFiles:
    folder = Path(folder)
    missing = [name for name in (STATE_FILE, META_FILE, IDS_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"generative model {key}: {', '.join(missing)} missing in {folder}")
    meta = json.loads((folder / META_FILE).read_text())
    ids = pd.read_parquet(folder / IDS_FILE).sort_values("item_index", ignore_index=True)
    if "trained" not in ids:  # a version registered before cold start: every track counts as trained
        ids["trained"] = True
    return GenerativeModelFiles(key=key, architecture=meta["architecture"], state=(folder / STATE_FILE).read_bytes(),
                                semantic_ids=ids, settings=meta["settings"])


def register(cfg: SetlistConfig, architecture: dict, state: bytes, semantic_ids: pd.DataFrame, settings: dict) -> int:
    """Log the model's files in the active run and register them; the new version."""
    with tempfile.TemporaryDirectory(prefix="setlist-generative-") as tmp:
        folder = save_model_files(tmp, architecture, state, semantic_ids, settings)
        return tracking.register_artifacts(cfg, folder, ARTIFACT_PATH, cfg.candidates.generative.model_name)


def champion_files(cfg: SetlistConfig) -> GenerativeModelFiles | None:
    """The champion's files, or None before any model was promoted."""
    name = cfg.candidates.generative.model_name
    version = tracking.champion_version(cfg, name)
    if version is None:
        return None
    return load_model_files(tracking.download_model_files(cfg, name, version), f"{name}/{version}")
