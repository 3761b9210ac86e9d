"""Launching :func:`setlist.sequential.training.fit` through Spark's ``TorchDistributor``.

On a local master the distributor runs ``num_processes`` torchrun ranks on the driver machine
(``local_mode``); on a cluster it runs them as barrier tasks on the executors, with a GPU each
when ``device`` is cuda (or auto and the driver sees one). The same ``fit`` runs either way.
"""
from __future__ import annotations

from typing import Any

from pyspark.sql import SparkSession


def launch_fit(spark: SparkSession, shard_files: list[str], settings: dict[str, Any], num_items: int,
               num_surfaces: int, validation: dict | None, exclude_seen: bool = False,
               item_attributes=None) -> dict[str, Any]:
    import torch
    from pyspark.ml.torch.distributor import TorchDistributor

    from setlist.sequential.training import fit

    local = spark.sparkContext.master.startswith("local")
    use_gpu = settings["device"] == "cuda" or (settings["device"] == "auto" and torch.cuda.is_available())
    distributor = TorchDistributor(num_processes=settings["num_processes"], local_mode=local, use_gpu=use_gpu)
    return distributor.run(fit, shard_files, settings, num_items, num_surfaces, validation, exclude_seen,
                           item_attributes)
