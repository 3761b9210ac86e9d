"""What the daily run wrote for a date: row counts per table and one user's list."""
from __future__ import annotations

from pyspark.sql import SparkSession
from pyspark.sql import functions as F

from setlist import lake
from setlist.config import SetlistConfig


def run(spark: SparkSession, cfg: SetlistConfig, ds: str) -> str:
    lines = [f"Setlist tables for ds={ds} in {cfg.paths.lake}:"]
    for table in cfg.tables.model_dump().values():
        if lake.table_exists(spark, cfg, table):
            rows = lake.read_table(spark, cfg, table, ds).count()
            lines.append(f"  {table:<20} {rows:>10,} rows")
    audit = lake.read_table(spark, cfg, cfg.tables.ingest_audit, ds).first()
    if audit:
        lines.append(f"  ingest: read {audit['rows_read']:,}, accepted {audit['accepted']:,}, "
                     f"quarantined {audit['quarantined']:,} {dict(audit['reasons'])}, "
                     f"duplicates {audit['duplicates']:,}")
    recs = lake.read_table(spark, cfg, cfg.tables.ranked_recs, ds)
    first_user = recs.agg(F.min("user_id")).first()[0]
    if first_user is not None:
        lines.append(f"  top 10 for {first_user}:")
        for row in recs.where(F.col("user_id") == first_user).orderBy("rank").limit(10).collect():
            lines.append("    " + "  ".join(f"{k}={v}" for k, v in row.asDict().items() if k not in ("user_id", "ds")))
    return "\n".join(lines)
