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


def read_raw(spark: SparkSession, cfg: SetlistConfig, ds: str, source=None):
    return lake.read_raw_events(spark, source or lake.raw_day_path(cfg, ds), cfg.events.input_format,
                                events.RAW_STRING_SCHEMA, events.CORRUPT,
                                events.RAW_RECORD, events.SOURCE_FILE)


def read_validated(spark: SparkSession, cfg: SetlistConfig, ds: str, source=None):
    fmt = cfg.events.input_format
    raw = read_raw(spark, cfg, ds, source)
    parsed = events.parse_json_lines(raw) if fmt == "json" else events.normalise_columns(raw)
    return events.validate_events(parsed, cfg.events, ds)


def run(spark: SparkSession, cfg: SetlistConfig, ds: str, run_id: str, source=None) -> IngestResult:
    """Validate and land one day. Nothing is written unless the input could be read.

    One pass over the raw files: the validated day (raw text kept on rejected rows only) is
    cached while the audit counts are taken, and both outputs are written from that cache.
    Parsing is most of a day's cost, and the cache is far cheaper than a second parse.
    The counts are taken before the first write, so an empty day fails with nothing written.
    An object store that cannot be reached stops the step here, naming its ``paths`` key.
    """
    lake.check_storage(spark, cfg, ("lake",) if source else ("lake", "raw"))
    validated = read_validated(spark, cfg, ds, source).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        by_reason = {row["reason"]: row["n"] for row in validated.groupBy(
            F.get(events.REASONS, 0).alias("reason")).agg(F.count(F.lit(1)).alias("n")).collect()}
        valid = by_reason.pop(None, 0)
        rows_read = valid + sum(by_reason.values())
        if rows_read == 0 and not cfg.events.allow_empty_input:
            raise IngestError(f"raw input for {ds} holds no events "
                              f"(set events.allow_empty_input=true to accept an empty day)")
        listens = events.deduplicate_listens(events.accepted_listens(validated, ds))
        lake.write_partition(listens, cfg, cfg.tables.listens, ds, run_id)
        accepted = lake.last_write_rows(spark, cfg, cfg.tables.listens)
        # Lakes ingested before raw_bytes existed gain the column (their older days read null).
        lake.write_partition(events.quarantined_events(validated, cfg.events, ds), cfg,
                             cfg.tables.quarantined_events, ds, run_id, add_columns=True)
    finally:
        validated.unpersist()
    result = IngestResult(ds=ds, rows_read=rows_read, accepted=accepted,
                          quarantined=sum(by_reason.values()), duplicates=valid - accepted,
                          reasons=dict(sorted(by_reason.items())))
    # The audit row is written last: it marks the day as completely ingested.
    audit = spark.createDataFrame([{**asdict(result), "run_id": run_id}],
                                  "ds string, rows_read long, accepted long, quarantined long, "
                                  "duplicates long, reasons map<string,long>, run_id string")
    lake.write_partition(audit, cfg, cfg.tables.ingest_audit, ds, run_id)
    log.info("ingested %s", result)
    return result
