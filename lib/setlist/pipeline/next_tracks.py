"""Next-tracks step: the recent listens -> ``next_tracks`` for ds, per seed track its ranked
continuations (``setlist.candidates.continuation``), the table a player reads at play time to
continue a session that batch scoring cannot see."""
from __future__ import annotations

import logging

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.candidates.continuation import next_tracks
from setlist.config import SetlistConfig
from setlist.errors import LakeError
from setlist.pipeline.candidates import recent_listens

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str) -> None:
    """Write the ``next_tracks`` partition for ``ds`` from the candidates' listens window."""
    listens = recent_listens(spark, cfg, ds)
    if listens is None:
        raise LakeError(f"next_tracks {ds}: the lake has no '{cfg.tables.listens}' table (count data has no "
                        f"plays in order to continue)")
    table = next_tracks(listens, cfg.candidates.continuation).withColumn("ds", F.lit(ds))
    lake.write_partition(table, cfg, cfg.tables.next_tracks, ds, run_id)
    log.info("next_tracks %s written", ds)
