"""Ingest step: raw events of one day -> ``listens`` + ``quarantined_events`` + ``ingest_audit``."""
from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, field

from pyspark import StorageLevel
from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import events, lake
from setlist.config import SetlistConfig
from setlist.errors import IngestError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    ds: str
    rows_read: int
    accepted: int
    quarantined: int
    duplicates: int
    reasons: dict[str, int] = field(default_factory=dict)


def read_validated(spark: SparkSession, cfg: SetlistConfig, ds: str, source=None):
    fmt = cfg.events.input_format
    raw = lake.read_raw_events(spark, source or lake.raw_day_path(cfg, ds), fmt,
                               events.RAW_STRING_SCHEMA, events.CORRUPT,
                               events.RAW_RECORD, events.SOURCE_FILE)
    parsed = events.parse_json_lines(raw) if fmt == "json" else events.normalise_columns(raw)
    return events.validate_events(parsed, cfg.events, ds)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str, source=None) -> IngestResult:
    """Validate and land one day. Nothing is written unless the input could be read."""
    validated = read_validated(spark, cfg, ds, source).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        primary = F.substring_index(F.get(events.REASONS, 0), ":", 1)
        counts = {row["reason"]: row["n"] for row in
                  validated.groupBy(primary.alias("reason")).agg(F.count(F.lit(1)).alias("n")).collect()}
        rows_read = sum(counts.values())
        valid = counts.pop(None, 0)
        if rows_read == 0 and not cfg.events.allow_empty_input:
            raise IngestError(f"raw input for {ds} holds no events "
                              f"(set events.allow_empty_input=true to accept an empty day)")
        listens = events.deduplicate_listens(events.accepted_listens(validated, ds))
        quarantined = events.quarantined_events(validated, ds)
        lake.write_partition(listens, cfg, cfg.tables.listens, ds, run_id)
        lake.write_partition(quarantined, cfg, cfg.tables.quarantined_events, ds, run_id)
        accepted = lake.read_table(spark, cfg, cfg.tables.listens, ds).count()
        quarantined_n = sum(counts.values())
        result = IngestResult(ds=ds, rows_read=rows_read, accepted=accepted,
                              quarantined=quarantined_n, duplicates=valid - accepted,
                              reasons=dict(sorted(counts.items())))
        # The audit row is written last: it marks the day as completely ingested.
        audit = spark.createDataFrame([{**asdict(result), "run_id": run_id}],
                                      "ds string, rows_read long, accepted long, quarantined long, "
                                      "duplicates long, reasons map<string,long>, run_id string")
        lake.write_partition(audit, cfg, cfg.tables.ingest_audit, ds, run_id)
    finally:
        validated.unpersist()
    log.info("ingested %s", result)
    return result
