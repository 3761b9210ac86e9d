"""The sequential model in the MLflow registry (``candidates.sequential.model_name``): register a
trained model's files, load the champion's (the same ``tracking.champion_alias`` as the ranker)."""
from __future__ import annotations

import tempfile

import pandas as pd

from setlist import tracking
from setlist.config import SetlistConfig
from setlist.sequential.artifacts import SequentialModelFiles, load_model_files, save_model_files

ARTIFACT_PATH = "sequential_model"


def register(cfg: SetlistConfig, architecture: dict, state: bytes, vocabulary: pd.DataFrame, settings: dict) -> int:
    """Log the model's files in the active run, register them; the new version."""
    with tempfile.TemporaryDirectory(prefix="setlist-sequential-") as tmp:
        folder = save_model_files(tmp, architecture, state, vocabulary, settings)
        return tracking.register_artifacts(cfg, folder, ARTIFACT_PATH, cfg.candidates.sequential.model_name)


def version_files(cfg: SetlistConfig, version: int) -> SequentialModelFiles:
    name = cfg.candidates.sequential.model_name
    return load_model_files(tracking.download_model_files(cfg, name, version), f"{name}/{version}")


def champion_files(cfg: SetlistConfig) -> SequentialModelFiles | None:
    """The champion's files, or None before any model was promoted."""
    version = tracking.champion_version(cfg, cfg.candidates.sequential.model_name)
    return None if version is None else version_files(cfg, version)
