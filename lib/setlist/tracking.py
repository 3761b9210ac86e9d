"""Every MLflow call of Setlist: runs, parameters, metrics and logged models.

The tracking URI and artifact location come from ``cfg.paths`` (a sqlite store by
default: MLflow 3 refuses the plain file store). Spark models are saved with their
own ``write()`` to a temporary folder and logged as artifacts under the given name
(``mlflow.spark.log_model`` would also infer a pip environment, which is slow and
adds nothing here); reload with ``PipelineModel.load`` on the downloaded folder.
"""
from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path
from typing import Iterator

import mlflow

from setlist.config import SetlistConfig


def _artifact_uri(folder: str) -> str:
    return folder if "://" in folder else Path(folder).absolute().as_uri()


def use_experiment(cfg: SetlistConfig) -> str:
    """Point MLflow at the configured store and experiment (created if missing); its id."""
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    name = cfg.tracking.experiment_name
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        return mlflow.create_experiment(name, artifact_location=_artifact_uri(cfg.paths.mlflow_artifacts))
    return experiment.experiment_id


@contextlib.contextmanager
def start_run(cfg: SetlistConfig, run_name: str, tags: dict[str, str] | None = None,
              nested: bool = False) -> Iterator[str]:
    """A run in the configured experiment (``nested``: a child of the active run); yields its run
    id. A failure marks it FAILED."""
    experiment_id = use_experiment(cfg)
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=tags or {}, nested=nested) as run:
        yield run.info.run_id


def log_params(params: dict) -> None:
    mlflow.log_params({key: str(value) for key, value in params.items()})


def log_metrics(metrics: dict[str, float], step: int | None = None) -> None:
    mlflow.log_metrics({key: float(value) for key, value in metrics.items()}, step=step)


def log_spark_model(model, name: str) -> str:
    """Save a Spark ML model (anything with ``write()``) and log it as artifacts ``name/``.

    Returns the artifact URI of the logged folder.
    """
    with tempfile.TemporaryDirectory(prefix="setlist-model-") as tmp:
        folder = Path(tmp) / name
        model.write().overwrite().save(str(folder))
        mlflow.log_artifacts(str(folder), artifact_path=name)
    return mlflow.get_artifact_uri(name)


def log_artifact(path: str | Path, artifact_path: str | None = None) -> str:
    """Log one local file (a report, a plot) under ``artifact_path``; its artifact URI."""
    path = Path(path)
    mlflow.log_artifact(str(path), artifact_path=artifact_path)
    return mlflow.get_artifact_uri(f"{artifact_path}/{path.name}" if artifact_path else path.name)


# --------------------------------------------------------------------------- ranker registry

def _client(cfg: SetlistConfig):
    mlflow.set_tracking_uri(cfg.paths.mlflow_tracking_uri)
    return mlflow.MlflowClient()


def set_tags(tags: dict[str, str]) -> None:
    mlflow.set_tags({key: str(value) for key, value in tags.items()})


def log_figure(figure, artifact_file: str) -> None:
    """Log a matplotlib figure as an image artifact (e.g. ``feature_importance.png``)."""
    mlflow.log_figure(figure, artifact_file)


def log_dict(values: dict | list, artifact_file: str) -> None:
    mlflow.log_dict(values, artifact_file)


def log_text(text: str, artifact_file: str) -> None:
    mlflow.log_text(text, artifact_file)


def log_ranker(cfg: SetlistConfig, booster, input_example) -> int:
    """Log a LightGBM booster (signature and input example from ``input_example``, a pandas
    frame of feature rows) in the active run and register it as ``tracking.model_name``;
    returns the new registry version."""
    import lightgbm
    import mlflow.lightgbm
    from mlflow.models import infer_signature

    signature = infer_signature(input_example, booster.predict(input_example))
    info = mlflow.lightgbm.log_model(booster, name="ranker", signature=signature, input_example=input_example,
                                     registered_model_name=cfg.tracking.model_name,
                                     # Skips MLflow's slow requirement inference.
                                     pip_requirements=[f"lightgbm=={lightgbm.__version__}"])
    return int(info.registered_model_version)


def champion_version(cfg: SetlistConfig, model_name: str | None = None) -> int | None:
    """The registry version of ``model_name`` (default ``tracking.model_name``, the ranker)
    holding ``tracking.champion_alias``, or None (no model or no alias)."""
    from mlflow.exceptions import MlflowException

    try:
        version = _client(cfg).get_model_version_by_alias(model_name or cfg.tracking.model_name,
                                                          cfg.tracking.champion_alias)
    except MlflowException as exc:
        if exc.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE", "NOT_FOUND"):
            return None
        raise
    return int(version.version)


def resolve_model_ref(cfg: SetlistConfig, ref: str | int) -> int:
    """A registry version number for ``ref``: a version ("3", 3), an alias ("champion"), or a
    model URI of the ranker, ``models:/<tracking.model_name>/3`` or ``models:/<name>@champion``.

    Raises SetlistError naming the reference when the registry has no such version or alias."""
    from mlflow.exceptions import MlflowException

    from setlist.errors import SetlistError

    text = str(ref)
    if text.startswith("models:/"):
        name, sep, rest = text[len("models:/"):].replace("@", "/", 1).partition("/")
        if name != cfg.tracking.model_name or not sep or not rest:
            raise SetlistError(f"model reference {text!r}: expected models:/{cfg.tracking.model_name}/<version> "
                               f"or models:/{cfg.tracking.model_name}@<alias>")
        text = rest
    client = _client(cfg)
    try:
        if text.isdigit():
            return int(client.get_model_version(cfg.tracking.model_name, text).version)
        return int(client.get_model_version_by_alias(cfg.tracking.model_name, text).version)
    except MlflowException as exc:
        raise SetlistError(f"model reference {text!r}: no such version or alias of "
                           f"'{cfg.tracking.model_name}' in the registry ({exc.error_code})") from None


def set_champion(cfg: SetlistConfig, version: int, model_name: str | None = None) -> None:
    _client(cfg).set_registered_model_alias(model_name or cfg.tracking.model_name, cfg.tracking.champion_alias,
                                            str(version))


def register_artifacts(cfg: SetlistConfig, folder: str | Path, artifact_path: str, model_name: str) -> int:
    """Log a local folder of model files in the active run and register it as a new version of
    ``model_name`` (a model that no MLflow flavour covers: the sequential transformer's state,
    architecture and vocabulary); returns the version."""
    from mlflow.exceptions import MlflowException

    mlflow.log_artifacts(str(folder), artifact_path=artifact_path)
    client = _client(cfg)
    try:
        client.create_registered_model(model_name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    version = client.create_model_version(model_name, source=mlflow.get_artifact_uri(artifact_path),
                                          run_id=mlflow.active_run().info.run_id)
    return int(version.version)


def champion_run_id(cfg: SetlistConfig, model_name: str) -> str | None:
    """The MLflow run that logged ``model_name``'s champion, or None without one."""
    version = champion_version(cfg, model_name)
    return None if version is None else _client(cfg).get_model_version(model_name, str(version)).run_id


def download_model_files(cfg: SetlistConfig, model_name: str, version: int) -> Path:
    """The files of a version registered by :func:`register_artifacts`, as a local folder."""
    source = _client(cfg).get_model_version(model_name, str(version)).source
    return Path(mlflow.artifacts.download_artifacts(artifact_uri=source))


def load_ranker(cfg: SetlistConfig, version: int):
    """The LightGBM booster of registry version ``version`` of ``tracking.model_name``."""
    import mlflow.lightgbm

    _client(cfg)
    return mlflow.lightgbm.load_model(f"models:/{cfg.tracking.model_name}/{version}")
