"""A bench's own lake, raw data, MLflow store and caches under one folder (config overrides)."""
from __future__ import annotations

from pathlib import Path


def workdir_paths(work: Path) -> list[str]:
    """``paths.*`` overrides that keep every file a bench's daily chain writes under ``work``."""
    return [f"paths.lake={work / 'lake'}", f"paths.raw={work / 'raw'}",
            f"paths.mlflow_tracking_uri=sqlite:///{work / 'mlflow.db'}",
            f"paths.mlflow_artifacts={work / 'mlartifacts'}", f"paths.checkpoints={work / 'checkpoints'}",
            f"paths.compiled_models={work / 'compiled'}"]
